"""The console's message catalogues: Dutch (default) and English, one YAML file per language.
The language comes from `?lang=`, then the `sw_lang` cookie, then the settings default."""

from __future__ import annotations

from functools import cache
from importlib import resources

import yaml

from backend.console.errors import CatalogueIncomplete

LANGUAGES = ("nl", "en")
COOKIE = "sw_lang"


@cache
def catalogue(lang: str) -> dict[str, str]:
    if lang not in LANGUAGES:
        lang = LANGUAGES[0]
    text = resources.files("backend.console").joinpath("messages", f"{lang}.yaml").read_text(
        encoding="utf-8")
    entries = yaml.safe_load(text)
    odd = [k for k in entries if not isinstance(k, str)]
    if odd:  # `yes:` unquoted is the boolean true, and its message is never found
        raise CatalogueIncomplete(f"{lang}: keys that are not text: {odd} (quote them)")
    return {k: str(v) for k, v in entries.items()}


# What the console names from the data, each by a key of its own (`timeline` entries' kinds,
# the alert's `police_delivery`, the case card's values): a catalogue lacking one would show
# the raw English value on a Dutch page.
TIMELINE_KINDS = ("raised", "transition", "note", "delivery", "escalated", "geofence",
                  "grouped", "confirmed")
POLICE_DELIVERY = ("pending", "delivered", "failed", "unreachable")
ACTIONS = ("acknowledge", "dispatch", "resolve", "false_alarm")


def required_keys() -> set[str]:
    """The keys every catalogue must have beyond those of the first: a name for every alert
    type the console can show, escalation action and target it marks an alert with, and
    every value of the data it names (timeline kinds, delivery states, risk, custody,
    organisations) and every action's refusal."""
    from typing import get_args

    from backend.cases.models import CUSTODY_STATUSES, ORGANISATIONS, RISK_LEVELS
    from backend.outbox.expired import EXPIRED
    from backend.routing.policy import REQUIRED_ALERT_TYPES, StepAction, StepTarget
    from backend.subscriptions.models import DELIVERY_STATES
    from backend.supervision.grouping import STORM_TYPE

    keys = {f"type_{t}" for t in (*REQUIRED_ALERT_TYPES, STORM_TYPE)}
    keys |= {f"escalation_{a}" for a in get_args(StepAction)}
    keys |= {f"escalation_target_{t}" for t in get_args(StepTarget)}
    keys |= {f"event_{k}" for k in TIMELINE_KINDS}
    keys |= {f"police_state_{v}" for v in POLICE_DELIVERY}
    keys |= {f"delivery_{v}" for v in (*DELIVERY_STATES, EXPIRED)}
    keys |= {f"risk_{v}" for v in RISK_LEVELS}
    keys |= {f"custody_{v}" for v in CUSTODY_STATUSES}
    keys |= {f"org_{v}" for v in ORGANISATIONS}
    keys |= {f"action_conflict_{a}" for a in ACTIONS}
    return keys


def check_complete() -> None:
    """Every language has every key of the first, and every key `required_keys` names."""
    base = set(catalogue(LANGUAGES[0])) | required_keys()
    for lang in LANGUAGES:
        missing = base - set(catalogue(lang))
        if missing:
            raise CatalogueIncomplete(f"{lang} lacks {sorted(missing)}")


def choose(query: str | None, cookie: str | None, default: str) -> str:
    """Pure: the language to answer in."""
    for candidate in (query, cookie, default):
        if candidate in LANGUAGES:
            return candidate  # type: ignore[return-value]
    return LANGUAGES[0]


class Translator:
    def __init__(self, lang: str) -> None:
        self.lang = lang
        self.messages = catalogue(lang)

    def __call__(self, key: str) -> str:
        return self.messages.get(key, key)
