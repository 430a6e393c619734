import pytest

from geofences.kept_fixes import KeptFixes


def fix(t: float) -> tuple[float, float, float, float, float, float]:
    return (t, 1000.0 + t, 2000.0 - t, 5.0, 4.4 + t / 1e6, 51.9 - t / 1e6)


def kept(limit: int = 360, every: float = 30, until: float = 600, spacing: float = 60,
         history: float = 3600) -> KeptFixes:
    fixes = KeptFixes(limit)
    t = 0.0
    while t <= until:
        fixes.remember(fix(t), spacing_s=spacing, history_s=history)
        t += every
    return fixes


def test_a_kept_fix_reads_back_as_it_was_given():
    fixes = kept(until=0)
    assert list(fixes) == [fix(0)] and fixes[0] == fixes[-1] == fix(0)
    with pytest.raises(IndexError):
        fixes[1]


def test_fixes_closer_than_the_spacing_are_thinned_to_about_one_per_spacing():
    fixes = kept(every=5, until=1200, spacing=60)
    times = [f[0] for f in fixes]
    assert len(times) <= 24  # 1200 s at about one a minute, not 241
    assert times[-1] == 1200 and times[0] == 0
    assert max(b - a for a, b in zip(times, times[1:])) <= 60 + 5
    assert all(f == fix(f[0]) for f in fixes)  # a replaced fix keeps its own values


def test_fixes_older_than_the_history_are_dropped():
    fixes = kept(every=60, until=1200, history=600)
    assert [f[0] for f in fixes][0] == 600 and fixes[-1][0] == 1200


def test_no_more_than_the_limit_are_kept():
    fixes = kept(limit=4, every=60, until=1200)
    assert [f[0] for f in fixes] == [1020, 1080, 1140, 1200]


def test_near_is_the_nearest_kept_fix_within_the_age():
    fixes = kept(every=60, until=600)
    assert fixes.near(290, 120) == fix(300)
    assert fixes.near(-100, 120) == fix(0)
    assert fixes.near(-121, 120) is None
    assert fixes.near(721, 120) is None
    assert KeptFixes(3).near(0, 120) is None


def test_drop_from_drops_the_fixes_not_older_than_the_time():
    fixes = kept(every=60, until=600)
    fixes.drop_from(300)
    assert fixes[-1] == fix(240) and len(fixes) == 5
    fixes.remember(fix(300), spacing_s=60, history_s=3600)
    assert fixes[-1] == fix(300)


def test_an_hour_at_one_a_minute_takes_about_fifty_bytes_a_fix():
    fixes = kept(every=60, until=3540)
    assert len(fixes) == 60
    assert fixes.nbytes() / len(fixes) < 64


def test_a_device_keeps_at_least_one_fix():
    with pytest.raises(ValueError):
        KeptFixes(0)
