"""A Mosquitto of our own on a free loopback port, with `set_tcp_nodelay true`: the
benchmark's (no persistence, no limits on queues), or one with a configuration of its own
(passwords, ACLs) for tests that must not touch the shared broker's settings.

    with OwnMosquitto() as broker:
        broker.port
    with OwnMosquitto(settings="allow_anonymous false\npassword_file {dir}/passwd\n",
                      users={"vic-001": "secret"}) as broker:
        ...

`users` go to {dir}/passwd; `passwords` makes more password files ({dir}/<name>), e.g. one per
listener.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Self

from backend.mqtt.embedded import free_port
from backend.process import set_group_niceness
from loadtests.errors import BrokerStartFailed

# What every broker of ours listens with, after its `settings` ({dir}: its directory).
LISTENER = "listener {port} 127.0.0.1\nset_tcp_nodelay true\nlog_dest stderr\n"
# The benchmark's settings.
BENCH_SETTINGS = """\
allow_anonymous true
persistence false
max_inflight_messages 0
max_queued_messages 1000000
max_queued_bytes 0
log_type error
log_type warning
"""


def mosquitto_binary() -> str:
    for candidate in (shutil.which("mosquitto"), "/usr/sbin/mosquitto"):
        if candidate and Path(candidate).exists():
            return candidate
    raise BrokerStartFailed("mosquitto is not installed (apt-get install mosquitto)")


class OwnMosquitto:
    def __init__(
        self, port: int | None = None, start_timeout_s: float = 10.0,
        settings: str = BENCH_SETTINGS, files: dict[str, str] | None = None,
        users: dict[str, str] | None = None, nice: int | None = None,
        passwords: dict[str, dict[str, str]] | None = None,
    ) -> None:
        self.port = port or free_port()
        # With a niceness the broker runs in a session of its own at it, group and all
        # (`backend.process`), as a service would; without, it runs as its starter does.
        self._nice = nice
        self._timeout = start_timeout_s
        self._settings = settings
        self._files = files or {}
        self._passwords = {**({"passwd": users} if users else {}), **(passwords or {})}
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self) -> Self:
        self._dir = tempfile.TemporaryDirectory(prefix="sw-mosquitto-")
        where = Path(self._dir.name)
        for name, text in self._files.items():
            (where / name).write_text(text)
        for name, users in self._passwords.items():
            passwd = where / name
            passwd.touch()
            for user, password in users.items():
                subprocess.run(["mosquitto_passwd", "-b", str(passwd), user, password],
                               check=True, timeout=10, capture_output=True)
        conf = where / "mosquitto.conf"
        conf.write_text(self._settings.replace("{dir}", str(where))
                        + LISTENER.format(port=self.port))
        # Mosquitto started as root drops to its own user: it must still read these files.
        where.chmod(0o755)
        for path in where.iterdir():
            path.chmod(0o644)
        log = open(where / "mosquitto.log", "wb")  # noqa: SIM115 - closed by proc end
        self._proc = subprocess.Popen(
            [mosquitto_binary(), "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT,
            start_new_session=self._nice is not None,
        )
        if self._nice is not None:
            try:
                os.setpriority(os.PRIO_PROCESS, self._proc.pid, self._nice)
            except PermissionError:
                pass  # raising priority needs CAP_SYS_NICE: the benchmark notes it (its own)
            set_group_niceness(self._nice, Path(f"/proc/{self._proc.pid}/autogroup"))
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
