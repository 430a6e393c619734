"""Start a private Mosquitto on a free loopback port with its own configuration (passwords,
ACLs), for tests that must not touch the shared broker's settings."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateMosquitto:
    def __init__(self, config: str, files: dict[str, str] | None = None,
                 users: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="sw-mosquitto-"))
        for name, text in (files or {}).items():
            (self.dir / name).write_text(text)
        if users:
            passwd = self.dir / "passwd"
            passwd.touch()
            for user, password in users.items():
                subprocess.run(["mosquitto_passwd", "-b", str(passwd), user, password],
                               check=True, timeout=10, capture_output=True)
        # Mosquitto started as root drops to its own user: it must be able to read these files.
        self.dir.chmod(0o755)
        for path in self.dir.iterdir():
            path.chmod(0o644)
        conf = self.dir / "mosquitto.conf"
        conf.write_text(
            config.replace("{dir}", str(self.dir))
            + f"\nlistener {self.port} 127.0.0.1\nset_tcp_nodelay true\n"
        )
        self._proc = subprocess.Popen(["mosquitto", "-c", str(conf)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("private mosquitto did not start")

    def stop(self) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()
            self._proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)
