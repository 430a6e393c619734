"""A Redis server of our own on a free loopback port (no persistence), which a test or a
measurement may stop (SIGSTOP: it hangs, as a server or a network that drops packets) and
resume, without touching the shared server.

    with own_redis() as server:
        server.url; server.hang(); server.resume()
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

import redis

from backend.mqtt.embedded import free_port


class RedisServer:
    def __init__(self, process: subprocess.Popen, port: int) -> None:
        self.process = process
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"

    def hang(self) -> None:
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.process.pid, signal.SIGCONT)


@contextmanager
def own_redis() -> Iterator[RedisServer]:
    binary = shutil.which("redis-server")
    assert binary, "redis-server is not installed (scripts/services.sh installs it)"
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = RedisServer(process, port)
    probe = redis.Redis(port=port, socket_timeout=0.5)
    try:
        deadline = time.monotonic() + 10
        while not _answers(probe):
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"redis-server did not start on port {port}")
            time.sleep(0.05)
        yield server
    finally:
        probe.close()
        server.resume()
        process.terminate()
        process.wait(timeout=10)


def _answers(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
