from __future__ import annotations

import pytest

from loadtests.locust_config import LoadConfig, UnsafeLoad, check_bounds


def _cfg(**kw) -> LoadConfig:
    base = {"mqtt_port": 1883, "topic_root": "sd/v1", "token": "t", "devices": 5,
            "fix_every_s": 1.0, "alarm_share": 0.05, "run_id": "abc"}
    return LoadConfig(**{**base, **kw})


def test_loopback_and_bounded_run_is_accepted():
    check_bounds(_cfg(), "http://127.0.0.1:8000", users=6, run_time_s=10)
    assert _cfg().device_id(7) == "ltabc-0007"


@pytest.mark.parametrize(("cfg", "host", "users", "run_time"), [
    (_cfg(), "http://example.org", 6, 10),
    (_cfg(), "http://127.0.0.1:8000", 10_000, 10),
    (_cfg(), "http://127.0.0.1:8000", 6, None),
    (_cfg(), "http://127.0.0.1:8000", 6, 3_600),
    (_cfg(devices=10_000), "http://127.0.0.1:8000", 6, 10),
    (_cfg(fix_every_s=0.01), "http://127.0.0.1:8000", 6, 10),
    (_cfg(token=""), "http://127.0.0.1:8000", 6, 10),
])
def test_unbounded_or_remote_runs_are_refused(cfg, host, users, run_time):
    with pytest.raises(UnsafeLoad):
        check_bounds(cfg, host, users, run_time)


def test_a_run_with_the_web_ui_is_refused():
    # The web UI changes host and users after the checks.
    with pytest.raises(UnsafeLoad, match="headless"):
        check_bounds(_cfg(), "http://127.0.0.1:8000", users=6, run_time_s=10, headless=False)
