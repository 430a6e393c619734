"""The benchmark's results: targets and verdicts (pure), the rich table, the Markdown section
of `docs/benchmarks.md`, the CSV and the PNG plot."""

from __future__ import annotations

import csv
import math
import os
import platform
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from loadtests.alarm_path import AlarmRun
from loadtests.desk import ACK_AFTER_S
from loadtests.sections import write_section
from loadtests.stats import Latency, Verdict, ratio
from loadtests.throughput import Step

BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
NEVER_MS = 30_000.0  # the alarm path's settle time: later than this counts as never


@dataclass(frozen=True)
class Split:
    """One slow alarm's time (ms): until the alarm worker had it, in the worker until its
    police feed was handed over for writing (of which the database), and the rest: the write
    and the feed's hop to the listener. None where the run could not tell (not stored, or no
    log line)."""

    message_id: str
    ms: float
    before: float | None
    in_worker: float | None = None
    database: float | None = None

    @property
    def after(self) -> float | None:
        if self.before is None or self.in_worker is None:
            return None
        return self.ms - self.before - self.in_worker


@dataclass
class AlarmLevel:
    background: int  # fixes/s asked of the fleet
    offered: float  # fixes/s the fleet published
    run: AlarmRun
    db_alerts: int  # alert rows when the level's settle time ended
    db_distinct: int
    final_alerts: int | None = None  # recounted at the end of the run, after the drain
    final_distinct: int | None = None
    drained: bool = True  # the worker had stored everything when the final count was taken
    # Two hops through a relay that commits each message first (`floor.measure` with a
    # database), at the alarms' rate, measured under this level's background just before
    # its alarms: what storing before forwarding costs at the least.
    store_floor: Latency | None = None
    # Two hops through the empty relay, the same way (rate, count, this level's background):
    # the plain floor under the load the alarms meet, beside the idle floor the target uses.
    relay_floor: Latency | None = None
    # Of the run's slowest alarms, by id: when the alarm worker received each (wall clock,
    # its alert's `raised_at`), and its time in the worker until the police feed was handed
    # over for writing, with the database's part of it (ms, ms: the worker's log,
    # `backend.ingest.alarm_timing`).
    worker_received: dict[str, float] = field(default_factory=dict)
    worker_times: dict[str, tuple[float, float]] = field(default_factory=dict)

    def slowest_split(self) -> list[Split]:
        """The police feed's slowest alarms split at the worker, slowest first."""
        splits = []
        for m, ms, sent in self.run.slowest:
            received = self.worker_received.get(m)
            in_worker, db = self.worker_times.get(m, (None, None))
            splits.append(Split(m, ms, (received - sent) * 1e3 if received is not None else None,
                                in_worker, db))
        return splits

    @property
    def late(self) -> int:
        """Alarms without an alert in the database when the level's settle time ended."""
        return max(0, self.run.sent - self.db_distinct)

    @property
    def lost(self) -> int:
        distinct = self.db_distinct if self.final_distinct is None else self.final_distinct
        return max(0, self.run.sent - distinct)

    @property
    def duplicated(self) -> int:
        if self.final_alerts is None or self.final_distinct is None:
            return self.db_alerts - self.db_distinct
        return self.final_alerts - self.final_distinct


@dataclass
class Results:
    command: str
    machine: dict[str, str]
    one_hop: dict[int, Latency] = field(default_factory=dict)
    two_hop: dict[int, Latency] = field(default_factory=dict)
    ceiling: float = math.nan
    measures: int = 0
    webhooks: bool = False
    alarm: list[AlarmLevel] = field(default_factory=list)
    ramp: list[Step] = field(default_factory=list)
    fix_workers: int = 1  # the ramp's, on one shared subscription; the target is one's
    memory: dict[str, float] = field(default_factory=dict)
    memory_devices: int = 0
    memory_measures: int = 0
    seconds: float = 0.0
    planned_levels: tuple[int, ...] = ()
    # Alerts the benchmark's desk acknowledged (loadtests/desk.py) and acknowledgements refused.
    acknowledged: int = 0
    acknowledge_failures: int = 0
    notes: list[str] = field(default_factory=list)

    def level(self, background: int) -> AlarmLevel | None:
        return next((a for a in self.alarm if a.background == background), None)

    @property
    def sustained(self) -> float:
        return sustained(self.ramp)

    @property
    def floor_two_hop(self) -> Latency | None:
        return self.two_hop.get(1_000) or next(iter(self.two_hop.values()), None)


def sustained(steps: list[Step]) -> float:
    ok = [s.target for s in steps if s.sustained]
    return max(ok) if ok else 0.0


def cpu_probe_ms(rounds: int = 3) -> float:
    """A fixed piece of pure-Python work, best of `rounds`, in ms: a yardstick for comparing
    runs made on different days (a shared VM is not always the same machine)."""
    best = math.inf
    for _ in range(rounds):
        started = time.perf_counter()
        total = 0
        for i in range(1_000_000):
            total += i
        best = min(best, (time.perf_counter() - started) * 1e3)
    return best


def steal_share(before: Any, after: Any) -> float:
    """Share of CPU time the hypervisor took between two `psutil.cpu_times()` (0 without
    the `steal` field, i.e. off Linux)."""
    fields = before._fields
    total = sum(getattr(after, f) - getattr(before, f) for f in fields
                if f not in ("guest", "guest_nice"))  # already counted in user and nice
    stolen = getattr(after, "steal", 0.0) - getattr(before, "steal", 0.0)
    return stolen / total if total > 0 else 0.0


def machine() -> dict[str, str]:
    model = platform.processor() or "unknown"
    try:
        text = Path("/proc/cpuinfo").read_text()
        found = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
        if found:
            model = found.group(1).strip()
    except OSError:
        pass
    load = os.getloadavg()
    return {
        "nproc": str(os.cpu_count()),
        "memory": f"{psutil.virtual_memory().total / 2**30:.1f} GiB",
        "cpu": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load average at start": f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
        "cpu probe (1M Python additions, best of 3)": f"{cpu_probe_ms():.0f} ms",
    }


def _at(background: int) -> str:
    """A level as the targets name it: "idle", "@1k fixes/s", "@2,500 fixes/s"."""
    if background == 0:
        return "idle"
    if background % 1_000 == 0:
        return f"@{background // 1_000}k fixes/s"
    return f"@{background:,} fixes/s"


def verdicts(r: Results) -> list[Verdict]:
    out: list[Verdict] = []
    floor = r.floor_two_hop
    at1k, at3k = r.level(1_000), r.level(3_000)
    nan = math.nan
    if (at1k is not None or 1_000 in r.planned_levels) and floor is not None:
        out.append(Verdict(f"alarm->police p99 {_at(1_000)} <= 3x two-hop floor p99",
                           at1k.run.police.p99 if at1k else nan, 3 * floor.p99, "ms"))
    if at1k is not None or 1_000 in r.planned_levels:
        out.append(Verdict(f"alarm->police p99.9 {_at(1_000)} < 20 ms",
                           at1k.run.police.p999 if at1k else nan, 20.0, "ms"))
    if at3k is not None or 3_000 in r.planned_levels:
        out.append(Verdict(f"alarm->police p99 {_at(3_000)} < 50 ms",
                           at3k.run.police.p99 if at3k else nan, 50.0, "ms"))
    # The webhook and console targets name no background: they hold at every level.
    for level in r.alarm:
        at = _at(level.background)
        if level.run.webhook is not None:
            out.append(Verdict(f"alarm->webhook p99 {at} < 20 ms", level.run.webhook.p99,
                               20.0, "ms"))
        if level.run.console is not None:
            out.append(Verdict(f"alarm->console p99 {at} < 50 ms", level.run.console.p99,
                               50.0, "ms"))
    if r.ramp and r.fix_workers == 1:
        out.append(Verdict("one worker sustains >= 5,000 fixes/s", r.sustained, 5_000.0,
                           "fixes/s", higher_is_better=True))
    if r.alarm:
        bad = sum(a.lost + a.duplicated for a in r.alarm)
        out.append(Verdict("alarms without exactly one alert by the end of the run (database)",
                           float(bad), 0.0, "alarms"))
    if r.memory:
        out.append(Verdict(f"{r.memory_devices:,} devices + {r.memory_measures:,} measures "
                           "< 1 GiB", r.memory["total_mib"], 1024.0, "MiB"))
    return out


def same_background_reading(r: Results) -> str | None:
    """The 3x target read against the empty relay under the alarms' own background (1,000
    fixes/s, at the alarms' rate) rather than idle at 1,000 msg/s: not the benchmark's target,
    shown beside it for the owner of the target to compare (docs/benchmarks.md, Summary)."""
    at1k = r.level(1_000)
    if at1k is None or at1k.relay_floor is None:
        return None
    measured, limit = at1k.run.police.p99, 3 * at1k.relay_floor.p99
    met = "met" if measured <= limit else "not met"
    return (f"Read against the empty relay under the same 1,000 fixes/s at the alarms' rate "
            f"instead (not the target's floor): alarm->police p99 {_num(measured)} ms against "
            f"3 x {_num(at1k.relay_floor.p99)} = {_num(limit)} ms, {met}.")


def _ms(v: float) -> str:
    if math.isinf(v):
        return "never"
    return "n/a" if math.isnan(v) else (f"{v:.2f}" if v < 10 else f"{v:.1f}")


def _x(v: float) -> str:
    if math.isinf(v):
        return "-"
    return "n/a" if math.isnan(v) else f"{v:.1f}x"


def latency_rows(r: Results) -> list[list[str]]:
    """Path, load, n, p50, p99, p99.9, p50 and p99 as multiples of the two-hop floor."""
    floor = r.floor_two_hop
    f50 = floor.p50 if floor else math.nan
    f99 = floor.p99 if floor else math.nan
    rows: list[list[str]] = []
    for rate, lat in sorted(r.one_hop.items()):
        rows.append(["floor: one hop (paho->Mosquitto->paho)", f"{rate:,} msg/s", str(lat.n),
                     _ms(lat.p50), _ms(lat.p99), _ms(lat.p999), "", ""])
    for rate, lat in sorted(r.two_hop.items()):
        rows.append(["floor: two hops via empty relay", f"{rate:,} msg/s", str(lat.n),
                     _ms(lat.p50), _ms(lat.p99), _ms(lat.p999), _x(ratio(lat.p50, f50)),
                     _x(ratio(lat.p99, f99))])
    for a in r.alarm:
        load = f"{a.background:,} fixes/s" if a.background else "idle"
        for name, lat in (("floor: two hops via empty relay", a.relay_floor),
                          ("floor: two hops via relay committing each message", a.store_floor)):
            if lat is not None:
                rows.append([name, load, str(lat.n), _ms(lat.p50), _ms(lat.p99),
                             _ms(lat.p999), _x(ratio(lat.p50, f50)), _x(ratio(lat.p99, f99))])
        channels: list[tuple[str, Latency | None]] = [
            ("alarm -> police MQTT feed", a.run.police),
            ("alarm -> device ack", a.run.ack),
            ("alarm -> console WebSocket", a.run.console),
            ("alarm -> webhook", a.run.webhook),
        ]
        for name, channel in channels:
            if channel is None:
                rows.append([name, load, "-", "n/a", "n/a", "n/a", "", ""])
                continue
            lat = channel
            rows.append([name, load, str(lat.n), _ms(lat.p50), _ms(lat.p99), _ms(lat.p999),
                         _x(ratio(lat.p50, f50)), _x(ratio(lat.p99, f99))])
    return rows


LATENCY_HEADER = ["path", "load", "n", "p50 ms", "p99 ms", "p99.9 ms", "p50/floor", "p99/floor"]


def print_tables(r: Results) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    t = Table(title="Alarm path and floor (latency, ms; floor = two hops at 1,000 msg/s)")
    for h in LATENCY_HEADER:
        t.add_column(h, justify="left" if h in ("path", "load") else "right")
    for row in latency_rows(r):
        t.add_row(*row)
    console.print(t)
    t = Table(title="Ingest throughput (one worker) and integrity")
    for h in ("measure", "value"):
        t.add_column(h)
    for key, value in other_rows(r):
        t.add_row(key, value)
    console.print(t)
    t = Table(title="Targets")
    for h in ("target", "measured", "limit", "verdict"):
        t.add_column(h)
    for v in verdicts(r):
        style = "green" if v.passed else "bold red"
        t.add_row(v.target, f"{_num(v.measured)} {v.unit}", f"{_num(v.limit)} {v.unit}",
                  f"[{style}]{v.status}[/{style}]")
    console.print(t)
    if (reading := same_background_reading(r)) is not None:
        console.print(reading)


def _num(v: float) -> str:
    if math.isinf(v):
        return "never"
    if math.isnan(v):
        return "n/a"
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.2f}"


def other_rows(r: Results) -> list[tuple[str, str]]:
    rows = [("bare paho subscriber ceiling (QoS 1)",
             "not measured" if math.isnan(r.ceiling) else f"{r.ceiling:,.0f} msg/s"),
            (("worker sustained, whole fleet (highest step)" if r.fix_workers == 1 else
              f"{r.fix_workers} fix workers on one shared subscription sustained (highest "
              "step)"), f"{r.sustained:,.0f} fixes/s")]
    for s in r.ramp:
        rows.append((f"  step {s.target:,.0f} fixes/s", s.describe()))
    rows.append(("active measures evaluated by the worker",
                 f"{r.measures:,}" if r.measures else "n/a (no geofence step)"))
    for a in r.alarm:
        load = f"{a.background:,} fixes/s" if a.background else "idle"
        undrained = "" if a.drained else " (the worker had not drained its backlog)"
        rows.append((f"alarms @ {load}",
                     (f"sent {a.run.sent}; alerts in DB after the settle time {a.db_distinct}, "
                      f"at the end of the run {a.final_distinct}: lost {a.lost}, duplicated "
                      f"{a.duplicated}, late {a.late}{undrained}; police feed missing "
                      f"{a.run.police_missing}, duplicate deliveries {a.run.police_duplicates}; "
                      f"fleet offered {a.offered:,.0f} fixes/s")))
    if r.alarm:
        rows.append((f"alerts acknowledged by the desk, {ACK_AFTER_S:.0f} s after the console "
                     "showed them", f"{r.acknowledged:,}, refused {r.acknowledge_failures}"))
    if r.memory:
        m = r.memory
        rows.append(("worker memory (RSS)",
                     (f"{m['total_mib']:.0f} MiB total: baseline {m['baseline_mib']:.0f}, "
                      f"devices +{m['devices_only_mib']:.0f}, "
                      f"measures +{m['measures_mib']:.0f}")))
    return rows


def slowest_rows(r: Results) -> list[list[str]]:
    def cell(v: float | None) -> str:
        return _ms(v) if v is not None else "-"

    rows = []
    for a in r.alarm:
        load = f"{a.background:,} fixes/s" if a.background else "idle"
        for s in a.slowest_split():
            rows.append([load, s.message_id, _ms(s.ms), cell(s.before), cell(s.in_worker),
                         cell(s.database), cell(s.after)])
    return rows


def markdown(r: Results, plot_name: str | None) -> str:
    lines = [BEGIN, "", f"Generated by `{r.command}` in {r.seconds:.0f} s.", "", "### Machine", ""]
    lines += [f"- {k}: {v}" for k, v in r.machine.items()]
    lines += ["", "### Latency", "", "| " + " | ".join(LATENCY_HEADER) + " |",
              "|" + "---|" * len(LATENCY_HEADER)]
    lines += ["| " + " | ".join(row) + " |" for row in latency_rows(r)]
    lines += ["", "### Throughput, integrity, memory", "", "| measure | value |", "|---|---|"]
    lines += [f"| {k.strip()} | {v} |" for k, v in other_rows(r)]
    lines += ["", "### Targets", "", "| target | measured | limit | verdict |", "|---|---|---|---|"]
    lines += [f"| {v.target} | {_num(v.measured)} {v.unit} | {_num(v.limit)} {v.unit} | "
              f"{v.status} |" for v in verdicts(r)]
    if (reading := same_background_reading(r)) is not None:
        lines += ["", reading]
    slowest = slowest_rows(r)
    if slowest:
        lines += ["", "### Slowest alarms (police feed)", "",
                  "Milliseconds from the sender's publish until the alarm worker had the alarm "
                  "(the alert's `raised_at`), in the worker until the police feed was handed "
                  "over for writing (its log), of which in database statements, and the rest: "
                  "the write and the feed's hop to the listener.", "",
                  "| load | alarm | ms | until the worker had it | in the worker | of which "
                  "database | feed to the listener |", "|---|---|---|---|---|---|---|"]
        lines += ["| " + " | ".join(row) + " |" for row in slowest]
    if r.notes:
        lines += ["", "### Notes from this run", ""] + [f"- {n}" for n in r.notes]
    if plot_name:
        lines += ["", f"![alarm latency against background load](benchmarks/{plot_name})"]
    lines += ["", END]
    return "\n".join(lines)


def write_markdown(path: Path, section: str) -> None:
    """Replace the benchmark's generated section of `path`, keeping everything around it."""
    write_section(path, section, BEGIN, END)


def write_csv(path: Path, r: Results) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(LATENCY_HEADER)
        w.writerows(latency_rows(r))


def plot(path: Path, r: Results) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    xs = [a.background for a in r.alarm]
    series: Sequence[tuple[str, str, Any]] = (
        ("police feed", "tab:red", lambda a: a.run.police),
        ("console", "tab:blue", lambda a: a.run.console),
        ("webhook", "tab:green", lambda a: a.run.webhook),
    )
    finite = [getattr(get(a), q) for _, _, get in series for a in r.alarm if get(a) is not None
              for q in ("p50", "p99", "p999") if math.isfinite(getattr(get(a), q))]
    ceiling = max([NEVER_MS, *finite]) * 1.5  # where "never arrived" is drawn
    never = False
    for name, colour, get in series:
        lats = [get(a) for a in r.alarm]
        if any(lat is None for lat in lats):
            continue
        for q, style in (("p50", ":"), ("p99", "-"), ("p999", "--")):
            ys = [getattr(lat, q) for lat in lats]
            never = never or any(math.isinf(y) for y in ys)
            ax.plot(xs, [ceiling if math.isinf(y) else y for y in ys], style, marker="o",
                    color=colour, label=f"{name} {q.replace('p999', 'p99.9')}")
    if never:
        ax.axhline(ceiling, color="black", linestyle=":", linewidth=0.8)
        ax.annotate("not arrived within the settle time", (xs[0], ceiling),
                    textcoords="offset points", xytext=(4, 4), fontsize=7)
    floor = r.floor_two_hop
    if floor is not None:
        ax.axhline(floor.p99, color="grey", linestyle="-.", label="two-hop floor p99")
    ax.set_yscale("log")
    ax.set_xlabel("background fixes/s")
    ax.set_ylabel("latency (ms, log)")
    ax.set_title("Alarm latency against background load")
    ax.set_xticks(xs)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
