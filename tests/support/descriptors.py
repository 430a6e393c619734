"""Every descriptor below 1024 taken, as in a process holding a thousand connections: what the
block opens lands above 1023, beyond what select() takes."""

from __future__ import annotations

import gc
import os
import resource
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

FD_SETSIZE = 1024  # select() takes descriptors below this
# What a fresh process does first to be such a process (`python -c`): a few more than 1,024
# descriptors held, the soft limit raised to allow them.
HOLD_IN_A_FRESH_PROCESS = (
    "import os, resource; soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE); "
    "resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1_400), hard)); "
    "held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1_100)]; "
)


@contextmanager
def descriptors_held() -> Iterator[None]:
    """Every descriptor below `FD_SETSIZE` in use for the block. The collector is off meanwhile:
    a socket of an earlier test that it collected would free a low descriptor for the block's
    next one (the block's own closes free only descriptors above 1023)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = FD_SETSIZE + 256
    if hard != resource.RLIM_INFINITY and hard < needed:
        pytest.skip(f"the hard limit of open files ({hard}) is below {needed}")
    if soft != resource.RLIM_INFINITY and soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    held = [os.open(os.devnull, os.O_RDONLY)]
    while held[-1] < FD_SETSIZE:  # the lowest free one each time: all below it are in use
        held.append(os.open(os.devnull, os.O_RDONLY))
    try:
        yield
    finally:
        for fd in held:
            os.close(fd)
        if was_enabled:
            gc.enable()
