"""Each command of deploy/systemd/ runs within its unit's sandbox, on the real services: started
as systemd would (the unit's niceness set before, every capability dropped, no new
privileges), under the unit's system call filter and socket families (`tests.support.sandbox`),
it does its work (the alarm worker raises an alert, the fix worker stores a fix, the loops and
the API answer), stops cleanly on SIGTERM, and writes no file: the units give it none to write
(ProtectSystem=strict, no ReadWritePaths=)."""

from __future__ import annotations

import ctypes
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from backend.alerts.models import Alert
from backend.devices.models import Ping
from backend.mqtt.embedded import free_port
from device_protocol import Alarm, Fix, Topics, codec
from loadtests.stack import ensure_database
from tests.backend.conftest import subprocess_world
from tests.conftest import MQTT_PORT, PG_URL
from tests.support import sandbox
from tests.support.mqtt import client, publish
from tests.support.notify import notify_socket
from tests.support.waiting import wait_until

pytestmark = [
    pytest.mark.services, pytest.mark.slow,
    pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                       reason="no systemd-analyze (the units' system call sets)"),
    pytest.mark.skipif(platform.machine() != "x86_64", reason="system call numbers: x86_64"),
]

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "deploy" / "systemd"
INSTALLED = "/opt/schildwacht/.venv/bin/schildwacht"
# Refused with EPERM (as under the units' SystemCallErrorNumber=), which the process survives:
# OpenBLAS (numpy, under shapely) asks for a NUMA memory policy on its buffers with mbind
# (@resources) and goes on without one.
SURVIVED = ("mbind",)
# The system calls that create, change or remove a file (an open: with one of WRITE_FLAGS).
WRITES = ("open", "openat", "creat", "mkdir", "mkdirat", "unlink", "unlinkat", "rename",
          "renameat", "renameat2", "link", "linkat", "symlink", "symlinkat", "truncate",
          "chmod", "fchmodat", "chown", "fchownat", "mknod", "mknodat")
WRITE_FLAGS = re.compile(r"O_WRONLY|O_RDWR|O_CREAT|O_TRUNC")
TGKILL = 234  # x86_64 (SystemCallArchitectures=native, the machines this runs on)
# A clean stop, as systemd counts it: exit 0 or SIGTERM (uvicorn re-raises it once stopped).
CLEAN = (0, -signal.SIGTERM)


@pytest.fixture(scope="module")
def pg_url() -> str:
    ensure_database(PG_URL)  # created with PostGIS when missing (an xdist worker's), migrated
    return PG_URL


@pytest.fixture
def manager() -> Iterator[tuple]:
    with notify_socket() as found:
        yield found


def _command(unit: Path, trace: Path) -> list[str]:
    """The unit's command, run from this checkout, within the unit's sandbox (and under
    strace, where there is one, for what it writes)."""
    found = sandbox.directives(unit)
    allowed = sandbox.allowed_syscalls([v for k, v in found if k == "SystemCallFilter"],
                                       sandbox.syscall_groups())
    families = sandbox.address_families(dict(found)["RestrictAddressFamilies"])
    args = dict(found)["ExecStart"].removeprefix(INSTALLED).split()
    command = [sys.executable, "-m", "tests.support.sandbox", "--refuse", ",".join(SURVIVED),
               "--families", ",".join(map(str, families))]
    if allowed is not None:
        command += ["--allow", ",".join(sorted(allowed))]
    command += ["--", sys.executable, "-m", "backend.cli", *args]
    if os.geteuid() == 0 and shutil.which("setpriv"):  # CapabilityBoundingSet= (empty)
        command = ["setpriv", "--bounding-set=-all", "--inh-caps=-all", "--no-new-privs",
                   *command]
    if shutil.which("strace"):
        command = ["strace", "-f", "-qq", "--seccomp-bpf", "-o", str(trace), "-e",
                   "trace=" + ",".join(WRITES), *command]
    return command


def _environment(unit: Path, base: dict[str, str], notify_path: str) -> dict[str, str]:
    env = {**base, "PYTHONPATH": str(ROOT), "NOTIFY_SOCKET": notify_path,
           "WATCHDOG_USEC": "2000000",
           # Installed code is compiled once, on a file system the service cannot write.
           "PYTHONDONTWRITEBYTECODE": "1",
           "SCHILDWACHT_API__PORT": str(free_port())}
    for key, value in sandbox.directives(unit):
        if key == "Environment":
            name, setting = value.split("=", 1)
            env[name] = setting
    if "SCHILDWACHT_METRICS__PORT" in env:  # its own, not the unit's: others run tests here
        env["SCHILDWACHT_METRICS__PORT"] = str(free_port())
    return env


def _start_as_systemd_does(unit: Path, command: list[str], env: dict[str, str]):
    nice = int(dict(sandbox.directives(unit)).get("Nice", "0"))

    def before_exec() -> None:  # systemd sets Nice= before it drops privileges
        if os.geteuid() == 0:
            os.setpriority(os.PRIO_PROCESS, 0, nice)

    # A session of its own: whatever the test leaves running is killed with it (`_stop`).
    return subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, preexec_fn=before_exec,
                            start_new_session=True)


def _service_pid(proc: subprocess.Popen) -> int:
    """The service's own process (under strace, not the one started)."""
    if not shutil.which("strace"):
        return proc.pid

    def running() -> int | None:
        for entry in Path("/proc").iterdir():
            try:
                # The service itself: its wrappers' command lines name it too.
                if (entry.name.isdigit() and _parent(entry) == proc.pid
                        and (entry / "cmdline").read_bytes().split(b"\0")[1:3]
                        == [b"-m", b"backend.cli"]):
                    return int(entry.name)
            except OSError:
                continue  # gone meanwhile
        return None

    return wait_until(running, timeout=20)


def _parent(entry: Path) -> int:
    return int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])


def _notified(sock, proc: subprocess.Popen, timeout_s: float = 60) -> bytes:
    """The next message to the service manager; AssertionError as soon as the process ends."""
    sock.settimeout(0.5)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            return sock.recv(64)
        except TimeoutError:
            if proc.poll() is not None:
                out = proc.stdout.read().decode(errors="replace")[-3000:]
                raise AssertionError(f"ended with {proc.returncode} before it was ready:\n{out}")
    raise AssertionError("the service manager was told nothing")


def _niceness(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


def _stop(proc: subprocess.Popen, pid: int) -> tuple[int, str]:
    """SIGTERM, to the main thread. Systemd's kill(2) of the process reaches the main thread,
    which waits for it (`backend.cli`), whenever that thread can take it; under strace a
    thread stopped for the tracer cannot, and another thread got the signal and kept it."""
    try:
        if proc.poll() is None:
            _tgkill(pid, signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            # Its threads' stacks (PYTHONFAULTHANDLER), then the service itself: killing strace
            # would leave it running.
            os.kill(pid, signal.SIGABRT)
            try:
                out, _ = proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(pid, signal.SIGKILL)
                out, _ = proc.communicate(timeout=10)
    finally:
        # Nothing of the test outlives it: a service left running would take over the rows of
        # the tests after it (their webhook deliveries, on keys it cannot open).
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return proc.returncode, out.decode(errors="replace")


def _tgkill(pid: int, sig: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syscall(TGKILL, pid, pid, sig) != 0:
        raise OSError(ctypes.get_errno(), "tgkill")


def _written(trace: Path) -> list[str]:
    """Every file the process created, changed or removed, or tried to."""
    if not trace.exists():
        return []
    found = []
    for line in trace.read_text(errors="replace").splitlines():
        call = re.match(r"\d+\s+(\w+)\(", line)
        if not call or call.group(1) not in WRITES:
            continue
        if call.group(1) in ("open", "openat") and not WRITE_FLAGS.search(line):
            continue
        if '"/dev/null"' in line:
            continue
        found.append(line)
    return found


def _http(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except (urllib.error.URLError, ConnectionError):
        return 0


def _alarm_raised(topics: Topics, engine, device: str) -> None:
    phone = client(MQTT_PORT, client_id=device)
    try:
        publish(phone, topics.alarm(device),
                codec.encode(Alarm(id="sandbox-1", kind="panic", tst=time.time())))
        wait_until(lambda: _count(engine, Alert, Alert.device_id == device), timeout=30)
    finally:
        phone.disconnect()


def _fix_stored(topics: Topics, engine, device: str) -> None:
    phone = client(MQTT_PORT, client_id=device)
    try:
        publish(phone, topics.loc(device),
                codec.encode(Fix(tst=time.time(), lat=51.92, lon=4.47, acc=10)))
        wait_until(lambda: _count(engine, Ping, Ping.device_id == device), timeout=30)
    finally:
        phone.disconnect()


def _count(engine, model, where) -> int:
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(model).where(where))


@pytest.mark.parametrize("name", ["ingest-alarm", "ingest", "loops", "api", "migrate"])
def test_each_command_works_within_its_units_sandbox(pg_url, manager, tmp_path, name) -> None:
    unit = UNITS / f"schildwacht-{name}.service"
    device = f"vic-sandbox-{name}"
    root, engine, base = subprocess_world(pg_url, f"sandbox{name}", device)
    sock, notify_path = manager
    env = _environment(unit, base, notify_path)
    trace = tmp_path / "strace"
    proc = _start_as_systemd_does(unit, _command(unit, trace), env)
    pid = proc.pid
    try:
        if name == "migrate":
            proc.wait(timeout=120)
        else:
            pid = _service_pid(proc)
            if os.geteuid() == 0:  # as the unit says, in spite of every capability dropped
                assert _niceness(pid) == int(dict(sandbox.directives(unit))["Nice"])
        if name == "api":
            api = f"http://127.0.0.1:{env['SCHILDWACHT_API__PORT']}"
            assert wait_until(lambda: _http(f"{api}/ready") == 200, timeout=60)
            assert _http(f"{api}/metrics") == 200
        elif name != "migrate":
            assert _notified(sock, proc) == b"READY=1"
            assert _notified(sock, proc) == b"WATCHDOG=1"
            if name == "ingest-alarm":
                _alarm_raised(Topics(root), engine, device)
            elif name == "ingest":
                _fix_stored(Topics(root), engine, device)
            else:
                metrics = f"http://127.0.0.1:{env['SCHILDWACHT_METRICS__PORT']}/metrics"
                assert _http(metrics) == 200
    finally:
        code, out = _stop(proc, pid)
        engine.dispose()
    assert code in CLEAN, (f"exit {code} (-{signal.SIGSYS.value}: a system call the unit "
                           f"refuses)\n{out[-3000:]}")
    assert _written(trace) == []
