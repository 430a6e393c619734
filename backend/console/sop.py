"""The procedure checklist per alert type (sop.yaml in this package)."""

from __future__ import annotations

from functools import cache
from importlib import resources

import yaml


@cache
def _checklists() -> dict[str, list[dict[str, str]]]:
    text = resources.files("backend.console").joinpath("sop.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def checklist(alert_type: str, lang: str) -> list[str]:
    steps = _checklists().get(alert_type) or _checklists()["default"]
    return [step.get(lang) or step["nl"] for step in steps]
