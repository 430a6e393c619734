"""What every long-running process sets for itself at start: the interpreter's switch interval
and its CPU niceness (`ProcessSettings`); and, once it has loaded what it keeps for life, that
heap out of the garbage collector's full scans (`freeze_loaded`)."""

from __future__ import annotations

import gc
import logging
import os
import sys

from backend.settings import ProcessSettings

log = logging.getLogger(__name__)


def apply(settings: ProcessSettings) -> None:
    """Apply to the calling thread, and so to every thread it starts afterwards: call it before
    any other thread exists."""
    sys.setswitchinterval(settings.switch_interval_s)
    if settings.nice is not None:
        set_niceness(settings.nice)


def set_niceness(nice: int) -> int:
    """Run at exactly this niceness, whatever the process inherited from what started it (a
    relative `os.nice` would give a worker started by a reniced parent another priority than
    the deployment says). Returns the niceness in effect: unchanged, with a warning, when
    raising priority needs a privilege (CAP_SYS_NICE) this process does not have."""
    try:
        os.setpriority(os.PRIO_PROCESS, 0, nice)
    except PermissionError:
        log.warning("niceness %d needs CAP_SYS_NICE: running at %d", nice,
                    os.getpriority(os.PRIO_PROCESS, 0))
    return os.getpriority(os.PRIO_PROCESS, 0)


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
