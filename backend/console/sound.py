"""The alarm tone of the console, generated with the standard library (no sample from elsewhere).

    python -m backend.console.sound   # writes backend/console/static/alarm.wav
"""

from __future__ import annotations

import math
import struct
import wave
from pathlib import Path

RATE = 16_000


def alarm_samples(rate: int = RATE) -> list[int]:
    """Two-tone (960/770 Hz) pulses, 3 x 0.25 s each, 16-bit mono with 10 ms fades."""
    samples: list[int] = []
    fade = int(0.01 * rate)
    for tone in (960, 770, 960, 770, 960, 770):
        n = int(0.25 * rate)
        for i in range(n):
            envelope = min(1.0, i / fade, (n - i) / fade)
            samples.append(int(0.6 * 32767 * envelope * math.sin(2 * math.pi * tone * i / rate)))
    samples += [0] * int(0.2 * rate)
    return samples


def write_wav(path: Path, rate: int = RATE) -> None:
    samples = alarm_samples(rate)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(struct.pack(f"<{len(samples)}h", *samples))


if __name__ == "__main__":
    write_wav(Path(__file__).parent / "static" / "alarm.wav")
