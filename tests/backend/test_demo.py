"""`schildwacht demo`, the first command of the quick start, as a new user runs it: in a
directory of its own, on the embedded defaults (no database, Redis or broker of the machine's),
it prints how to reach it, a simulated victim's panic and an offender driving to her home
become alerts the API shows, the console answers, the log names devices but no position, and
Ctrl-C stops it cleanly."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from backend.mqtt.embedded import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
GEOFENCE = {"approach", "zone_breach", "proximity"}


def _wait_for(what, deadline_s: float, step_s: float = 0.3):
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if found := what():
            return found
        time.sleep(step_s)
    return None


def _alerts(api: httpx.Client) -> list:
    """The open alerts, none while the API is still starting (the token is printed first)."""
    try:
        return api.get("/api/v1/alerts").json()
    except httpx.TransportError:
        return []


def test_the_demo_raises_a_panic_alert_on_embedded_defaults_and_stops_on_ctrl_c(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCHILDWACHT_")}
    env.update(SCHILDWACHT_API__PORT=str(port), PYTHONPATH=str(REPO_ROOT))
    out = tmp_path / "demo.log"
    with out.open("w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "backend.cli", "demo", "--devices", "2"],
                                cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        token = _wait_for(lambda: (m := re.search(r"Admin token \(this run only\): (\S+)",
                                                  out.read_text())) and m.group(1), 60)
        assert token, out.read_text()[-2000:]
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=5,
                          headers={"Authorization": f"Bearer {token}"}) as api:
            alerts = _wait_for(lambda: (found := _alerts(api)) and {"panic", *GEOFENCE}
                               <= {a["type"] for a in found} and found, 90, step_s=1)
            assert alerts, out.read_text()[-2000:]
            for alert in alerts:
                role = "victim" if alert["type"] == "panic" else "offender"
                assert alert["device"]["id"].startswith(f"demo-{role}-")
            assert httpx.get(f"{base}/console/login", timeout=5).status_code == 200
        assert (tmp_path / ".demo" / "schildwacht.db").exists()  # its own, in its directory
    finally:
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(timeout=30)
    text = out.read_text()
    assert rc == 0, text[-2000:]
    assert "pressed panic" in text and "alert raised" in text
    # Rotterdam's latitude and longitude: the log carries ids, never where a victim is.
    assert not re.search(r"\b51\.9\d|\b4\.4\d{2}", text)
