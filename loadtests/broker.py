"""The benchmark's own Mosquitto: a free port, `set_tcp_nodelay true`, no persistence.

    with OwnMosquitto() as broker:
        broker.port
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Self

from loadtests.errors import BrokerStartFailed

CONFIG = """\
listener {port} 127.0.0.1
allow_anonymous true
persistence false
set_tcp_nodelay true
max_inflight_messages 0
max_queued_messages 1000000
max_queued_bytes 0
log_dest stderr
log_type error
log_type warning
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def mosquitto_binary() -> str:
    for candidate in (shutil.which("mosquitto"), "/usr/sbin/mosquitto"):
        if candidate and Path(candidate).exists():
            return candidate
    raise BrokerStartFailed("mosquitto is not installed (apt-get install mosquitto)")


class OwnMosquitto:
    def __init__(self, port: int | None = None, start_timeout_s: float = 10.0) -> None:
        self.port = port or free_port()
        self._timeout = start_timeout_s
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self) -> Self:
        self._dir = tempfile.TemporaryDirectory(prefix="sw-bench-mosquitto-")
        conf = Path(self._dir.name) / "mosquitto.conf"
        conf.write_text(CONFIG.format(port=self.port))
        log = open(Path(self._dir.name) / "mosquitto.log", "wb")  # noqa: SIM115 - closed by proc end
        self._proc = subprocess.Popen(
            [mosquitto_binary(), "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + self._timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise BrokerStartFailed(f"mosquitto exited with {self._proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise BrokerStartFailed(f"mosquitto did not listen on {self.port}")

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(5)
        self._proc = None
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
