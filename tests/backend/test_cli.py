"""The command line's own decisions (the commands themselves run in test_cli_processes.py)."""

from __future__ import annotations

import pytest

from backend.cli import application_name, build_parser


@pytest.mark.parametrize(("argv", "name"), [
    (["ingest", "--channels", "alarm"], "schildwacht ingest alarm"),
    (["ingest"], "schildwacht ingest"),
    (["api"], "schildwacht api"),
    (["loops"], "schildwacht loops"),
])
def test_each_command_names_its_database_connections(argv, name):
    assert application_name(build_parser().parse_args(argv)) == name


# A service's main thread waiting for its stop signal, where the kernel hands SIGTERM to
# another thread (the main one blocks it here, as it may be busy in C code elsewhere).
WAITER = """
import signal, sys, threading, time
from backend.cli import StopSignal

stop = StopSignal(poll_s=0.2)
threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
print("waiting", flush=True)
stop.wait()
print("stopped", flush=True)
"""


def test_a_service_stops_on_sigterm_delivered_to_another_thread():
    import os
    import signal
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", WAITER], stdout=subprocess.PIPE, text=True,
                            cwd=os.getcwd())
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "waiting"
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
        assert out.strip() == "stopped" and proc.returncode == 0
    finally:
        proc.kill()
