"""A service manager's notification socket, as systemd gives a `Type=notify` service."""

from __future__ import annotations

import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def notify_socket(timeout_s: float = 30) -> Iterator[tuple[socket.socket, str]]:
    """The bound socket and its path (short: a Unix socket's path is at most 107 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="sw-")) / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(timeout_s)
    try:
        yield sock, str(path)
    finally:
        sock.close()
        path.unlink()
        path.parent.rmdir()
