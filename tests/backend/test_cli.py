"""The command line's own decisions (the commands themselves run in test_cli_processes.py)."""

from __future__ import annotations

import pytest

from backend.cli import application_name, build_parser, simulate_argv


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


# -- user and token commands (on the test database) ----------------------------------------------
@pytest.fixture
def accounts(pg_sessions, pg_url, monkeypatch):
    """A dispatcher with an open console session, and two tokens; the commands' settings."""
    from datetime import UTC, datetime, timedelta

    from backend.auth import sessions as web_sessions
    from backend.auth.tokens import issue
    from backend.auth.users import add_user

    monkeypatch.setenv("SCHILDWACHT_DATABASE__URL", pg_url)
    monkeypatch.setenv("SCHILDWACHT_PROCESS__FREEZE_HEAP", "false")
    expires = datetime.now(UTC) + timedelta(days=1)
    with pg_sessions.begin() as s:
        user = add_user(s, "desk", "correct horse battery", "dispatcher", {"regions": ["VR17"]})
        cookie, _ = web_sessions.start(s, user, 3_600)
        first, first_token = issue(s, "police-rdam", "police", {"units": ["RE07"]}, expires)
        _, other_token = issue(s, "police-other", "police", {"units": ["RE05"]}, expires)
        first_id = first.id
    return pg_sessions, cookie, first_id, first_token, other_token


def _grants(sessions, token: str) -> bool:
    from backend.auth.tokens import authenticate

    with sessions() as s:
        return authenticate(s, token, None) is not None


@pytest.mark.services
def test_token_revoke_refuses_the_token_from_then_on(accounts, capsys):
    from backend.cli import main

    sessions, _, token_id, token, other = accounts
    assert main(["token", "revoke", str(token_id)]) == 0
    assert f"token {token_id} (police-rdam) revoked at" in capsys.readouterr().out
    assert not _grants(sessions, token) and _grants(sessions, other)
    assert main(["token", "list"]) == 0
    listed = capsys.readouterr().out
    assert f"{token_id}  revoked" in listed and "police-other" in listed
    assert token not in listed


@pytest.mark.services
def test_token_revoke_of_an_unknown_or_malformed_id_changes_nothing(accounts, capsys):
    import uuid

    from backend.cli import main

    sessions, _, _, token, other = accounts
    unknown = uuid.uuid4()
    assert main(["token", "revoke", str(unknown)]) == 2
    assert f"error: no token {unknown} (nothing changed)" in capsys.readouterr().err
    with pytest.raises(SystemExit) as refused:
        main(["token", "revoke", "police-rdam"])
    assert refused.value.code == 2 and "invalid UUID value" in capsys.readouterr().err
    assert _grants(sessions, token) and _grants(sessions, other)


@pytest.mark.services
def test_user_disable_ends_her_sessions_and_enable_lets_her_sign_in_again(accounts, capsys):
    from backend.auth import sessions as web_sessions
    from backend.auth.errors import BadCredentials
    from backend.auth.users import check_password
    from backend.cli import main

    sessions, cookie, _, _, _ = accounts
    assert main(["user", "disable", "desk"]) == 0
    assert "1 console session(s) ended" in capsys.readouterr().out
    with sessions.begin() as s:
        assert web_sessions.resolve(s, cookie) is None
        with pytest.raises(BadCredentials):
            check_password(s, "desk", "correct horse battery")
    assert main(["user", "disable", "desk"]) == 0  # already: as it is
    assert main(["user", "enable", "desk"]) == 0
    with sessions.begin() as s:
        assert check_password(s, "desk", "correct horse battery").username == "desk"
        assert web_sessions.resolve(s, cookie) is None  # her ended session stays ended


@pytest.mark.services
def test_user_disable_of_an_unknown_user_changes_nothing(accounts, capsys):
    from backend.auth import sessions as web_sessions
    from backend.cli import main

    sessions, cookie, _, _, _ = accounts
    assert main(["user", "disable", "nobody"]) == 2
    assert "error: no user nobody (nothing changed)" in capsys.readouterr().err
    with sessions() as s:
        assert web_sessions.resolve(s, cookie) is not None


def test_user_add_without_a_terminal_or_a_password_says_so(tmp_path):
    """Run from a script with nothing on stdin: a clear error and exit 2, no traceback, no
    user (nothing reaches the database)."""
    import subprocess
    import sys

    env = {"SCHILDWACHT_DATABASE__URL": f"sqlite:///{tmp_path}/none.db", "PATH": "/usr/bin"}
    done = subprocess.run([sys.executable, "-m", "backend.cli", "user", "add", "--username",
                           "desk", "--role", "dispatcher", "--scope", "VR17"],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
                          env=env, cwd=str(__import__("pathlib").Path(__file__).parents[2]))
    assert done.returncode == 2, done.stderr
    assert "no password given" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "none.db").exists()


def test_the_simulator_speaks_to_this_deployments_topic_root_and_broker_unless_told():
    from backend.settings import Settings
    from simulator.runner import build_parser as simulator_parser

    settings = Settings.model_validate({"protocol": {"topic_root": "walk/v1"},
                                        "broker": {"host": "10.0.0.5", "port": 8883}})
    args = simulator_parser().parse_args(simulate_argv(settings, ["--scenario", "panic"]))
    assert (args.topic_root, args.host, args.port) == ("walk/v1", "10.0.0.5", 8883)
    args = simulator_parser().parse_args(simulate_argv(settings, ["--topic-root", "sd/v1"]))
    assert args.topic_root == "sd/v1"
