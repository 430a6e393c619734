"""The benchmark runs the database server at the alarm worker's niceness and puts it back: shown
on a process tree of the test's own (the shared test server is left alone)."""

from __future__ import annotations

import os
import subprocess
import sys

import psutil
import pytest

from loadtests.server_nice import tree_at

# A parent that forks a sleeping child at once and another for each line it reads.
PARENT = """
import subprocess, sys
def fork():
    kid = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    print(kid.pid, flush=True)
fork()
for _line in sys.stdin:
    fork()
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="putting a process back to a higher priority "
                    "needs CAP_SYS_NICE")
def test_the_tree_and_what_it_forks_meanwhile_run_at_the_niceness_then_are_put_back():
    base = os.getpriority(os.PRIO_PROCESS, 0)
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        first = int(parent.stdout.readline())
        with tree_at(parent.pid, base + 4) as done:
            parent.stdin.write("fork\n")
            parent.stdin.flush()
            forked = int(parent.stdout.readline())
            during = [psutil.Process(p).nice() for p in (parent.pid, first, forked)]
        after = [psutil.Process(p).nice() for p in (parent.pid, first, forked)]
    finally:
        for child in psutil.Process(parent.pid).children():
            child.kill()
        parent.kill()
        parent.wait(10)
    assert done.nice == base + 4 and done.describe() == str(base + 4)
    assert during == [base + 4] * 3
    assert after == [base] * 3


def test_a_process_that_is_gone_is_said_so():
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait(10)
    with tree_at(gone.pid, 5) as done:
        pass
    assert done.nice is None and done.describe() == "unchanged (server process gone)"
