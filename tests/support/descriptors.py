"""Many descriptors open at once, as in a process holding a thousand connections."""

from __future__ import annotations

import os
import resource
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

# Held open by `descriptors_held(HELD)`: every descriptor opened meanwhile lands above 1023,
# beyond what select() takes.
HELD = 1_100


@contextmanager
def descriptors_held(count: int = HELD) -> Iterator[None]:
    """`count` descriptors open for the block (the soft limit raised to allow them)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = count + 256
    if hard != resource.RLIM_INFINITY and hard < needed:
        pytest.skip(f"the hard limit of open files ({hard}) is below {needed}")
    if soft != resource.RLIM_INFINITY and soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(count)]
    try:
        yield
    finally:
        for fd in held:
            os.close(fd)
