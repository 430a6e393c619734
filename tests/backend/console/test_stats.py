from __future__ import annotations

from datetime import UTC, datetime, timedelta

from backend.console import i18n, sop
from backend.console.charts import bar_chart
from backend.console.stats import AlertRow, DeviceRow, region_figures

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_region_figures():
    alerts = [
        AlertRow("VR17", T0, T0 + timedelta(seconds=30), T0 + timedelta(seconds=90), "resolved"),
        AlertRow("VR17", T0, T0 + timedelta(seconds=50), None, "false_alarm"),
        AlertRow("VR13", T0, None, None, "new"),
        AlertRow("VR13", T0, T0, T0, "resolved", exercise=True),  # exercises do not count
    ]
    devices = [DeviceRow("VR17", True), DeviceRow("VR17", False), DeviceRow("VR13", None)]
    by = {f.vr_code: f for f in region_figures(alerts, devices)}
    assert by["VR17"].median_ack_s == 40.0 and by["VR17"].median_dispatch_s == 90.0
    assert by["VR17"].false_alarm_pct == 50.0 and by["VR17"].uptime_pct == 50.0
    assert by["VR13"].alerts == 1 and by["VR13"].median_ack_s is None
    assert by["VR13"].uptime_pct is None


def test_bar_chart_scales_to_maximum():
    chart = bar_chart("x", [("VR17", 50.0), ("VR13", None)], maximum=100)
    assert chart.bars[1].width == 0 and chart.bars[1].text == "-"
    assert chart.bars[0].width * 2 == bar_chart("x", [("a", 100.0)], 100).bars[0].width


def test_catalogues_complete_and_language_choice():
    i18n.check_complete()
    assert i18n.choose("en", "nl", "nl") == "en"
    assert i18n.choose(None, "en", "nl") == "en"
    assert i18n.choose("xx", None, "nl") == "nl"
    assert i18n.Translator("en")("acknowledge") == "Acknowledge"
    assert i18n.Translator("nl")("acknowledge") == "Aannemen"


def test_sop_per_type_with_default():
    assert sop.checklist("panic", "en")[0].startswith("Call the victim")
    assert sop.checklist("unknown-type", "nl") == sop.checklist("default", "nl")


def test_every_alert_type_the_console_shows_has_its_own_checklist():
    """A zone breach had the default checklist: its steps were filed under `zone_entry`."""
    from backend.routing.policy import REQUIRED_ALERT_TYPES
    from backend.supervision.grouping import STORM_TYPE

    default = sop.checklist("default", "en")
    for alert_type in (*REQUIRED_ALERT_TYPES, STORM_TYPE):
        for lang in i18n.LANGUAGES:
            steps = sop.checklist(alert_type, lang)
            assert steps and steps != sop.checklist("default", lang), (alert_type, lang)
    assert sop.checklist("zone_breach", "en") != default
