"""Generated sections of docs/benchmarks.md: each benchmark writes its own between two markers
and leaves everything around it alone. (Imports nothing heavy: the memory probe's baseline is
measured in a process that imports the geofence benchmark.)"""

from __future__ import annotations

from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def write_section(path: Path, section: str, begin: str, end: str, heading: str = "") -> None:
    """Replace the generated section of `path` (from `begin` to `end`, both included in
    `section`), keeping everything around it; append it, under `heading`, where it is missing."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        text = head + section + tail
    else:
        text = text.rstrip() + "\n\n" + (f"{heading}\n\n" if heading else "") + section + "\n"
    path.write_text(text)
