from __future__ import annotations

from loadtests.throughput import judge


def test_step_sustained_when_everything_is_stored():
    step = judge(2_000, sent=10_000, step_s=5.0, stored=10_000, grace_s=1.0)
    assert step.sustained and step.backlog == 0
    assert step.offered == 2_000


def test_step_not_sustained_when_a_backlog_remains():
    step = judge(8_000, sent=40_000, step_s=5.0, stored=30_000, grace_s=1.0)
    assert not step.sustained and step.backlog == 10_000
    assert not step.fleet_short
    assert step.describe().endswith("backlog 10,000 -> NOT sustained")


def test_step_not_sustained_when_the_generator_falls_short():
    step = judge(10_000, sent=30_000, step_s=5.0, stored=30_000, grace_s=1.0)
    assert step.offered == 6_000 and not step.sustained
    assert step.fleet_short and "the fleet could not offer this rate" in step.describe()


def test_step_reports_the_workers_cpu_per_fix_stored():
    step = judge(4_000, sent=20_000, step_s=5.0, stored=20_000, grace_s=1.5, cpu_s=3.0)
    assert step.cpu_us_per_fix == 150.0
    assert "worker CPU 150 us/fix" in step.describe()
    assert judge(4_000, sent=20_000, step_s=5.0, stored=0, grace_s=1.5,
                 cpu_s=3.0).cpu_us_per_fix is None
    assert "worker CPU" not in judge(4_000, sent=20_000, step_s=5.0, stored=20_000,
                                     grace_s=1.5).describe()
