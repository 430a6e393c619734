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


def check_complete() -> None:
    """Every language has every key of the first, a name for every alert type the console
    can show, and for every escalation action and target it marks an alert with."""
    from typing import get_args

    from backend.routing.policy import REQUIRED_ALERT_TYPES, StepAction, StepTarget
    from backend.supervision.grouping import STORM_TYPE

    base = set(catalogue(LANGUAGES[0])) | {f"type_{t}" for t in (*REQUIRED_ALERT_TYPES,
                                                                 STORM_TYPE)}
    base |= {f"escalation_{a}" for a in get_args(StepAction)}
    base |= {f"escalation_target_{t}" for t in get_args(StepTarget)}
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
