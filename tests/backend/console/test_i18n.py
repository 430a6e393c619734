"""The catalogues: a name for every escalation action and target the console marks an alert
with, or the start stops (a mark would read "escalation_target_desk_supervisor")."""

from __future__ import annotations

import pytest

from backend.console import i18n
from backend.console.errors import CatalogueIncomplete


def test_the_escalation_marks_read_as_the_desk_says_them():
    assert i18n.Translator("nl")("escalation_escalate") == "geëscaleerd"
    assert i18n.Translator("nl")("escalation_target_desk_supervisor") == "teamleider"
    assert i18n.Translator("en")("escalation_target_desk_supervisor") == "desk supervisor"


@pytest.mark.parametrize("key", ["escalation_target_desk_supervisor", "escalation_re_alert",
                                 "police_state_pending", "risk_high", "custody_released",
                                 "org_three_ro", "event_delivery", "event_note",
                                 "delivery_pending", "action_conflict_dispatch"])
def test_a_catalogue_without_a_name_for_a_value_the_console_shows_stops_the_start(
        monkeypatch, key):
    catalogues = {lang: dict(i18n.catalogue(lang)) for lang in i18n.LANGUAGES}
    for entries in catalogues.values():
        del entries[key]
    monkeypatch.setattr(i18n, "catalogue", lambda lang: catalogues[lang])
    with pytest.raises(CatalogueIncomplete, match=key):
        i18n.check_complete()


def test_the_catalogues_are_complete():
    i18n.check_complete()


def test_the_values_the_console_shows_read_in_dutch():
    nl = i18n.Translator("nl")
    assert nl("police_state_pending") == "wordt verstuurd"
    assert nl("risk_high") == "hoog" and nl("custody_released") == "vrijgelaten"
    assert nl("org_three_ro") == "Reclassering (3RO)"
    assert nl("event_delivery") == "aflevering"
