"""Every garbage collection is timed into the pause histogram; a long one is logged."""

from __future__ import annotations

import gc
import logging

import pytest

from backend import gc_watch


@pytest.fixture
def watch():
    yield gc_watch
    gc_watch.uninstall()


def _observed(generation: str) -> float:
    return gc_watch.GC_PAUSE_SECONDS.labels(generation)._sum.get()


def test_each_collection_is_timed_by_generation(watch):
    watch.install(warn_ms=1e9)
    before = (_observed("0"), _observed("2"))

    gc.collect(0)
    gc.collect(2)

    assert _observed("0") > before[0]
    assert _observed("2") > before[1]


def test_a_collection_longer_than_the_threshold_is_a_warning_once_started(watch, caplog):
    watch.install(warn_ms=0.0)  # every collection is "long"
    gc.freeze()  # what a started process has done (`process.freeze_loaded`)
    try:
        with caplog.at_level(logging.WARNING, logger="backend.gc_watch"):
            gc.collect(2)
    finally:
        gc.unfreeze()
    [record] = [r for r in caplog.records if "generation=2" in r.getMessage()]
    assert record.getMessage().startswith("gc pause generation=2 ms=")
    assert record.levelno == logging.WARNING


def test_while_the_process_loads_a_long_collection_is_only_debug(watch, caplog):
    watch.install(warn_ms=0.0)
    assert gc.get_freeze_count() == 0  # nothing frozen yet: still starting
    with caplog.at_level(logging.DEBUG, logger="backend.gc_watch"):
        gc.collect(2)
    records = [r for r in caplog.records if "generation=2" in r.getMessage()]
    assert records and all(r.levelno == logging.DEBUG for r in records)


def test_install_twice_times_each_collection_once(watch, caplog):
    watch.install(warn_ms=0.0)
    watch.install(warn_ms=0.0)
    with caplog.at_level(logging.DEBUG, logger="backend.gc_watch"):
        gc.collect(1)
    assert len([r for r in caplog.records if "generation=1" in r.getMessage()]) == 1


def test_uninstalled_it_times_nothing(watch):
    watch.install()
    watch.uninstall()
    before = _observed("1")
    gc.collect(1)
    assert _observed("1") == before
