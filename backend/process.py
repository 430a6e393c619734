"""What every long-running process sets for itself at start: the interpreter's switch interval
and its CPU niceness (`ProcessSettings`); and, once it has loaded what it keeps for life, that
heap out of the garbage collector's full scans (`freeze_loaded`).

Niceness orders a process only against the others of its scheduling group. With autogroup (on
by default in many distributions' kernels, `kernel.sched_autogroup_enabled`) every session is
such a group while no CPU cgroup holds the process, and the kernel first shares the CPU
between the groups: a worker started as a service (systemd gives each a session of its own)
got as much CPU as any other service, whatever its niceness (docs/benchmarks.md, item 57). So
a process that leads its session gives its session's group the same niceness."""

from __future__ import annotations

import gc
import logging
import os
import sys
import time
from pathlib import Path

from backend.settings import ProcessSettings

log = logging.getLogger(__name__)

# The calling process's autogroup: "/autogroup-<n> nice <niceness>"; written, its niceness.
AUTOGROUP = Path("/proc/self/autogroup")
GROUP_TRIES, GROUP_RETRY_S = 5, 0.11


def apply(settings: ProcessSettings) -> None:
    """Apply to the calling thread, and so to every thread it starts afterwards: call it before
    any other thread exists."""
    sys.setswitchinterval(settings.switch_interval_s)
    if settings.nice is not None:
        set_niceness(settings.nice)


def set_niceness(nice: int) -> int:
    """Run at exactly this niceness, whatever the process inherited from what started it (a
    relative `os.nice` would give a worker started by a reniced parent another priority than
    the deployment says); so does the process's session group when the process leads its
    session (`set_group_niceness`). Returns the niceness in effect: unchanged, with a warning,
    when raising priority needs a privilege (CAP_SYS_NICE) this process does not have."""
    try:
        os.setpriority(os.PRIO_PROCESS, 0, nice)
    except PermissionError:
        log.warning("niceness %d needs CAP_SYS_NICE: running at %d", nice,
                    os.getpriority(os.PRIO_PROCESS, 0))
    if os.getsid(0) == os.getpid():
        set_group_niceness(nice)
    return os.getpriority(os.PRIO_PROCESS, 0)


def set_group_niceness(nice: int, autogroup: Path = AUTOGROUP) -> int | None:
    """Give the session's scheduling group (autogroup) this niceness; returns the group's
    niceness in effect, or None on a kernel without autogroups. The group holds every process
    of the session: from a process that does not lead its session, this sets its starter's."""
    if not autogroup.exists():
        return None
    for attempt in range(GROUP_TRIES):
        try:
            autogroup.write_text(str(nice))
            break
        except PermissionError:
            log.warning("session niceness %d needs CAP_SYS_NICE: its group keeps its own", nice)
            break
        except BlockingIOError:
            # Without CAP_SYS_ADMIN the kernel takes one such change per 0.1 s, machine-wide:
            # services starting together wait their turn, a bounded number of times.
            if attempt + 1 < GROUP_TRIES:
                time.sleep(GROUP_RETRY_S)
            else:
                log.warning("session niceness %d not set (the kernel was busy %d times): its "
                            "group keeps its own", nice, GROUP_TRIES)
        except OSError as exc:
            log.warning("session niceness %d not set (%s): its group keeps its own", nice,
                        exc.strerror)
            break
    return group_niceness(autogroup)


def group_niceness(autogroup: Path = AUTOGROUP) -> int | None:
    """The niceness of the calling process's session group; None without autogroups, and in the
    kernel's default group, for which it writes nothing: a process whose session was never
    started anew since boot (as under a container's first process), which shares the root's
    weight rather than a group's."""
    try:
        return int(autogroup.read_text().split()[-1])
    except (FileNotFoundError, ValueError, IndexError):
        return None


def freeze_loaded() -> None:
    """Move every object alive now into the collector's permanent generation: call it once the
    process has loaded what it keeps for life (code, settings, regions, caches). A full
    collection stops every thread for as long as it takes to scan the tracked objects; with
    what a process loads at start (about 170,000 objects for the API) that was 50-110 ms, every
    15 s in the loops process and now and then in the API, whose event loop carries the
    console stream (`backend.gc_watch` logs them). Garbage is collected first, so none is
    frozen; objects frozen are still freed when nothing refers to them any more."""
    gc.collect()
    gc.freeze()
