"""The systemd units in deploy/systemd/ run the README's deployment: one unit per command of
"Running it for real", each service's CPU weight in the proportion its niceness stands for
(between services a weight decides, not a niceness), a metrics port per process without an
API, a watchdog for the ingest workers and the loops, secrets only from the environment file,
a sandbox no looser than `EXPOSURE_AT_MOST`, and every unit one systemd itself accepts. That
each command works within its unit's sandbox: test_sandboxed_services.py."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from configparser import ConfigParser
from pathlib import Path

import pytest

from loadtests.stack import NICE

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "deploy" / "systemd"
INSTALLED = "/opt/schildwacht/.venv/bin/schildwacht"
# The exposure `systemd-analyze security` rates every unit at, at most (0 to 10, lower is
# tighter): what the units' sandbox reaches (README, "Running it for real"). What is left is
# what a service on the network needs (PrivateNetwork=, IP and socket families), a per-site
# choice (IPAddressDeny=) or a cost (MemoryDenyWriteExecute=, PrivateUsers=, ProcSubset=).
EXPOSURE_AT_MOST = 1.3
# The kernel's weight of a niceness (kernel/sched/core.c, sched_prio_to_weight).
KERNEL_WEIGHT = {-10: 9548, -5: 3121, 0: 1024, 5: 335}


def _section(path: Path, name: str = "Service") -> dict[str, str]:
    parser = ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # keys as systemd spells them
    parser.read_string(path.read_text())
    return dict(parser[name])


def _units() -> dict[str, dict[str, str]]:
    return {p.stem: _section(p) for p in sorted(UNITS.glob("*.service"))}


def _readme_commands() -> set[str]:
    block = (ROOT / "README.md").read_text().split("## Running it for real", 1)[1]
    block = block.split("```sh", 1)[1].split("```", 1)[0]
    commands = set()
    for line in block.splitlines():
        line = line.split("#", 1)[0].strip()
        found = re.search(r"(?:^|\s)schildwacht (.+)$", line)
        if found:
            commands.add(found.group(1).strip())
    return commands


def test_each_command_of_the_readme_deployment_has_its_unit() -> None:
    commands = {s["ExecStart"].removeprefix(INSTALLED + " ") for s in _units().values()}

    assert _readme_commands() == commands
    assert _units()["schildwacht-api"]["Environment"] == "SCHILDWACHT_API__RUN_LOOPS=false"


@pytest.mark.parametrize(("unit", "role"), [
    ("schildwacht-ingest-alarm", "ingest-alarm"), ("schildwacht-api", "api"),
    ("schildwacht-loops", "loops"), ("schildwacht-ingest", "ingest"),
])
def test_each_service_weighs_what_its_niceness_stands_for(unit: str, role: str) -> None:
    service = _units()[unit]
    nice = NICE[role]  # the niceness the README recommends, as the benchmark runs it

    assert int(service["Nice"]) == nice
    assert int(service["CPUWeight"]) == pytest.approx(100 * KERNEL_WEIGHT[nice] / 1024, rel=0.1)


def test_the_broker_gets_the_alarm_workers_share() -> None:
    parser = ConfigParser(interpolation=None)
    parser.optionxform = str
    parser.read(UNITS / "mosquitto.service.d" / "schildwacht.conf")
    alarm = _units()["schildwacht-ingest-alarm"]

    assert parser["Service"]["CPUWeight"] == alarm["CPUWeight"]
    assert parser["Service"]["Nice"] == alarm["Nice"]


def test_the_broker_may_hold_a_connection_for_every_device() -> None:
    """Each connection is a file descriptor of the broker's: under systemd's default soft
    limit (1024) it refuses every connection beyond about a thousand. 150,000 devices, and a
    fifth more for the rest and for reconnects."""
    parser = ConfigParser(interpolation=None)
    parser.optionxform = str
    parser.read(UNITS / "mosquitto.service.d" / "schildwacht.conf")
    soft = parser["Service"]["LimitNOFILE"].split(":")[0]

    assert int(soft) >= 150_000 * 1.2


def test_each_process_without_an_api_serves_its_metrics_on_a_port_of_its_own(
        monkeypatch) -> None:
    from backend.settings import Settings

    ports = {}
    for name in ("schildwacht-ingest-alarm", "schildwacht-ingest", "schildwacht-loops"):
        variable, value = _units()[name]["Environment"].split("=", 1)
        monkeypatch.setenv(variable, value)
        ports[name] = Settings().metrics.port
    assert None not in ports.values() and len(set(ports.values())) == 3


def test_a_worker_that_stops_saying_it_is_alive_is_started_again() -> None:
    for name in ("schildwacht-ingest-alarm", "schildwacht-ingest", "schildwacht-loops"):
        service = _units()[name]
        assert service["Type"] == "notify", name  # `backend.service_notify`
        assert int(service["WatchdogSec"]) >= 10 and service["Restart"] == "always", name


def test_no_service_is_given_up_after_a_few_failed_starts() -> None:
    """A database or broker away for longer than five restarts in ten seconds (systemd's
    default start limit) must not leave a service failed for good; the migrations, which every
    service waits for, are tried again until the database answers."""
    for path in sorted(UNITS.glob("schildwacht-*.service")):
        assert _section(path, "Unit")["StartLimitIntervalSec"] == "0", path.name
    migrate = _units()["schildwacht-migrate"]
    assert migrate["Restart"] == "on-failure" and int(migrate["RestartSec"]) > 0


def test_every_service_that_uses_the_broker_starts_after_it() -> None:
    for name in ("api", "ingest-alarm", "ingest", "loops"):
        unit = _section(UNITS / f"schildwacht-{name}.service", "Unit")
        assert "mosquitto.service" in unit["After"].split(), name


def test_secrets_come_from_the_environment_file_only() -> None:
    for name, service in _units().items():
        assert service["EnvironmentFile"] == "/etc/schildwacht/schildwacht.env", name
        assert not re.search(r"PASSWORD|TOKEN|SECRET|KEY", service.get("Environment", "")), name
        assert service["User"] == "schildwacht", name
        assert service["NoNewPrivileges"] == "yes", name


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_systemd_accepts_every_unit(tmp_path: Path) -> None:
    # systemd checks that each command exists: here, this checkout's.
    here = ROOT / ".venv" / "bin" / "schildwacht"
    if not here.exists():
        pytest.skip("no installed schildwacht command in this checkout")
    for path in UNITS.glob("*.service"):
        (tmp_path / path.name).write_text(path.read_text().replace(INSTALLED, str(here)))
    done = subprocess.run(["systemd-analyze", "verify", *sorted(tmp_path.glob("*.service"))],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    # Units named in After=/Requires= that this machine lacks are not the units' fault.
    complaints = [line for line in (done.stdout + done.stderr).splitlines()
                  if line.strip() and "postgresql.service" not in line
                  and "mosquitto.service" not in line]
    assert done.returncode == 0 and complaints == [], done.stdout + done.stderr


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
@pytest.mark.parametrize("path", sorted(UNITS.glob("*.service")), ids=lambda p: p.stem)
def test_each_unit_is_sandboxed_at_least_as_tightly_as_now(path: Path) -> None:
    done = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "--no-pager",
         f"--threshold={round(EXPOSURE_AT_MOST * 10)}", str(path)],
        capture_output=True, text=True, timeout=60)
    level = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", done.stdout)

    assert level is not None, done.stdout + done.stderr
    assert float(level.group(1)) <= EXPOSURE_AT_MOST and done.returncode == 0, done.stdout


def test_a_process_gets_its_niceness_from_its_unit_not_from_itself() -> None:
    """Systemd sets Nice= before it starts the process; the process itself could not raise
    its priority (no capability, setpriority refused by the system call filter): a unit that
    left it to `SCHILDWACHT_PROCESS__NICE` would run its process at the default niceness."""
    for path in sorted(UNITS.glob("schildwacht-*.service")):
        service = _section(path)
        assert "SCHILDWACHT_PROCESS__NICE" not in service.get("Environment", ""), path.name
        assert service["CapabilityBoundingSet"] == "", path.name
        if path.stem != "schildwacht-migrate":
            assert "Nice" in service, path.name


def test_no_unit_refuses_the_writable_code_that_ctypes_needs() -> None:
    """MemoryDenyWriteExecute= refuses memory both writable and executable: libffi's callbacks
    (ctypes, cffi) need it. numpy, under shapely, loads ctypes in every process, and
    cryptography cffi."""
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, backend.cli, backend.ingest.worker, "
         "backend.api.app; print(sorted({'_ctypes', '_cffi_backend'} & set(sys.modules)))"],
        capture_output=True, text=True, timeout=60, cwd=ROOT, check=True).stdout.strip()

    assert loaded != "[]", "no libffi user loaded any more: MemoryDenyWriteExecute= may do"
    for name, service in _units().items():
        assert service.get("MemoryDenyWriteExecute", "no") == "no", name
