"""Horizontal bar charts as inline SVG geometry (pure; the template draws them)."""

from __future__ import annotations

from dataclasses import dataclass

BAR_HEIGHT = 18
GAP = 6
LABEL_WIDTH = 60
WIDTH = 420


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    value: float | None
    x: float
    y: float
    width: float
    text: str


@dataclass(frozen=True, slots=True)
class Chart:
    title: str
    bars: list[Bar]
    width: int
    height: int


def bar_chart(title: str, items: list[tuple[str, float | None]], maximum: float | None = None) -> Chart:
    values = [v for _, v in items if v is not None]
    top = maximum if maximum is not None else (max(values) if values else 1.0)
    top = top or 1.0
    span = WIDTH - LABEL_WIDTH - 50
    bars = [
        Bar(label=label, value=value, x=LABEL_WIDTH, y=i * (BAR_HEIGHT + GAP),
            width=0.0 if value is None else round(span * min(value, top) / top, 1),
            text="-" if value is None else f"{value:g}")
        for i, (label, value) in enumerate(items)
    ]
    return Chart(title=title, bars=bars, width=WIDTH,
                 height=max(1, len(items)) * (BAR_HEIGHT + GAP))
