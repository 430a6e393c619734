"""Settings of the locust users, from the environment, with hard bounds: load tests talk to
127.0.0.1 only and stay small in users, devices and time.

    SW_LOAD_MQTT_PORT       broker port (1883)
    SW_LOAD_TOPIC_ROOT      protocol topic root (sd/v1)
    SW_LOAD_TOKEN           an admin bearer token of the API under test (required)
    SW_LOAD_DEVICES         devices registered at test start (50, at most 500)
    SW_LOAD_FIX_EVERY_S     seconds between fixes per device (1.0, at least 0.2)
    SW_LOAD_ALARM_SHARE     share of device tasks that press panic (0.05)
    SW_LOAD_RUN_ID          prefix of the device ids (random)
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from urllib.parse import urlparse

from loadtests.errors import BenchError

MAX_USERS = 200
MAX_DEVICES = 500
MAX_RUN_TIME_S = 600
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class UnsafeLoad(BenchError):
    """The requested load is outside the bounds (not loopback, too many users, no time limit)."""


@dataclass(frozen=True)
class LoadConfig:
    mqtt_port: int
    topic_root: str
    token: str
    devices: int
    fix_every_s: float
    alarm_share: float
    run_id: str

    @classmethod
    def from_env(cls) -> LoadConfig:
        env = os.environ
        return cls(
            mqtt_port=int(env.get("SW_LOAD_MQTT_PORT", "1883")),
            topic_root=env.get("SW_LOAD_TOPIC_ROOT", "sd/v1"),
            token=env.get("SW_LOAD_TOKEN", ""),
            devices=int(env.get("SW_LOAD_DEVICES", "50")),
            fix_every_s=float(env.get("SW_LOAD_FIX_EVERY_S", "1.0")),
            alarm_share=float(env.get("SW_LOAD_ALARM_SHARE", "0.05")),
            run_id=env.get("SW_LOAD_RUN_ID", uuid.uuid4().hex[:6]),
        )

    def device_id(self, index: int) -> str:
        return f"lt{self.run_id}-{index:04d}"


def check_bounds(cfg: LoadConfig, host: str | None, users: int, run_time_s: float | None,
                 *, headless: bool = True) -> None:
    """Raise UnsafeLoad unless the run is loopback-only and bounded. Only a headless run is
    bounded by its command line: locust's web UI lets its user change the host and the users
    after these checks."""
    if not headless:
        raise UnsafeLoad("run with --headless (the web UI can change the host and the users)")
    if not host or urlparse(host).hostname not in LOOPBACK:
        raise UnsafeLoad(f"--host must be on 127.0.0.1, not {host!r}")
    if users > MAX_USERS:
        raise UnsafeLoad(f"{users} users exceeds the bound of {MAX_USERS}")
    if not run_time_s or run_time_s > MAX_RUN_TIME_S:
        raise UnsafeLoad(f"--run-time is required and at most {MAX_RUN_TIME_S} s")
    if not 1 <= cfg.devices <= MAX_DEVICES:
        raise UnsafeLoad(f"SW_LOAD_DEVICES must be 1..{MAX_DEVICES}")
    if cfg.fix_every_s < 0.2:
        raise UnsafeLoad("SW_LOAD_FIX_EVERY_S must be at least 0.2")
    if not cfg.token:
        raise UnsafeLoad("SW_LOAD_TOKEN (an admin token of the API under test) is required")
