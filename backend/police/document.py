"""Reading the alert document and the lifecycle rule shared by all police formats.

The alert document (schema `schildwacht.alert/1`) is a plain dict built by the backend; see
README.md for its shape. The formats need only a few fields to be present — `alert_id`,
`sequence`, `type`, `priority`, `state`, `raised_at` — and treat everything else as optional.

Lifecycle rule (one place, used by CAP and CloudEvents alike): the first message of an alert has
sequence `FIRST_SEQUENCE` (1) and is an *alert*; a terminal state (resolved, false_alarm,
cancelled) is a *cancel*; every other later transition is an *update*. A document with an
`escalation` member (`step`, `after_s`, `action`, ...: the alert sent again to the police because
nobody acknowledged it in time, with the sequence of its last message) is an *escalation*.

The messages of one alert are ordered by (sequence, escalation step): an escalation comes after
the message whose sequence it has, and before the next transition. `Message` names one of them
by that key and its time; `earlier_messages` picks those before a given message, for formats
that chain a message to the ones it follows (CAP `references`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from backend.police.errors import DocumentError

SCHEMA = "schildwacht.alert/1"
FIRST_SEQUENCE = 1
STATES = frozenset({"new", "acknowledged", "dispatched", "resolved", "false_alarm", "cancelled"})
TERMINAL_STATES = frozenset({"resolved", "false_alarm", "cancelled"})

Alert = Mapping[str, Any]


class MessageKind(StrEnum):
    ALERT = "alert"
    UPDATE = "update"
    CANCEL = "cancel"
    ESCALATION = "escalation"


def message_kind(alert: Alert) -> MessageKind:
    """Alert for the first message, Cancel for a terminal state, Escalation for a document with
    an `escalation` member, Update otherwise."""
    if state(alert) in TERMINAL_STATES:
        return MessageKind.CANCEL
    if escalation(alert) is not None:
        return MessageKind.ESCALATION
    if sequence(alert) <= FIRST_SEQUENCE:
        return MessageKind.ALERT
    return MessageKind.UPDATE


def required(alert: Alert, key: str) -> Any:
    value = alert.get(key)
    if value is None or value == "":
        raise DocumentError(f"alert document lacks required field {key!r}")
    return value


def alert_id(alert: Alert) -> str:
    return str(required(alert, "alert_id"))


def sequence(alert: Alert) -> int:
    value = required(alert, "sequence")
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise DocumentError(f"alert {alert.get('alert_id')}: sequence must be an integer >= 0")
    return value


def escalation(alert: Alert) -> Mapping[str, Any] | None:
    """The document's `escalation` member, None when it has none. Its `step` (an integer >= 0,
    the plan's step) and `after_s` (seconds after `raised_at` at which the step fell due) are
    required; `action` is optional."""
    value = alert.get("escalation")
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise DocumentError(f"alert {alert.get('alert_id')}: escalation must be an object")
    step, after = value.get("step"), value.get("after_s")
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise DocumentError(f"alert {alert.get('alert_id')}: escalation.step must be an "
                            "integer >= 0")
    if isinstance(after, bool) or not isinstance(after, int | float) or not 0 <= after < 1e9:
        raise DocumentError(f"alert {alert.get('alert_id')}: escalation.after_s must be a "
                            "number of seconds >= 0")
    return value


def escalation_step(alert: Alert) -> int | None:
    found = escalation(alert)
    return None if found is None else int(found["step"])


def state(alert: Alert) -> str:
    value = str(required(alert, "state"))
    if value not in STATES:
        raise DocumentError(f"alert {alert.get('alert_id')}: unknown state {value!r}")
    return value


def parse_time(value: Any, field: str) -> datetime:
    """An ISO 8601 time (or a datetime) as an aware UTC datetime; no offset means UTC."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError as exc:
            raise DocumentError(f"{field} is not an ISO 8601 time") from exc
    else:
        raise DocumentError(f"{field} is not an ISO 8601 time")
    if parsed.tzinfo is None:
        # Times are stored in UTC; some stores (SQLite) hand them back without an offset.
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def raised_at(alert: Alert) -> datetime:
    return parse_time(required(alert, "raised_at"), "raised_at")


def message_time(alert: Alert) -> datetime:
    """When this message's transition happened: `updated_at`, or `raised_at` if absent; for an
    escalation, when its step fell due (`raised_at` + `escalation.after_s`), so that every
    rendering of it is the same."""
    if message_kind(alert) is MessageKind.ESCALATION:
        after = float(escalation(alert)["after_s"])  # type: ignore[index]
        return raised_at(alert) + timedelta(seconds=after)
    if sequence(alert) > FIRST_SEQUENCE and alert.get("updated_at"):
        return parse_time(alert["updated_at"], "updated_at")
    return raised_at(alert)


@dataclass(frozen=True, slots=True)
class Message:
    """One message of an alert, as a later message names it: its sequence, its escalation step
    (0: the message of a raise or transition) and its time (`message_time` of its document)."""

    sequence: int
    escalation_step: int
    time: datetime

    @property
    def key(self) -> tuple[int, int]:
        return (self.sequence, self.escalation_step)


def message_key(alert: Alert) -> tuple[int, int]:
    """(sequence, escalation step) of this message: its place among the alert's messages."""
    return (sequence(alert), escalation_step(alert) or 0)


def earlier_messages(alert: Alert, known: Iterable[Message]) -> list[Message]:
    """The alert's messages before this one, in order, each once: the first message always
    (sequence 1, at `raised_at`: derived from the document itself), and every message of `known`
    whose key comes before this message's. `known` may hold later messages and one message more
    than once (one per delivery): they change nothing, so the answer for a message stays the
    same however much the alert has moved on since. Of one key, the earliest time is kept (one
    message has one time; this only makes the choice not depend on the order given). Pure."""
    key = message_key(alert)
    found: dict[tuple[int, int], Message] = {}
    if (FIRST_SEQUENCE, 0) < key:
        found[(FIRST_SEQUENCE, 0)] = Message(FIRST_SEQUENCE, 0, raised_at(alert))
    for message in known:
        if message.key >= key or message.key == (FIRST_SEQUENCE, 0):
            continue
        time = parse_time(message.time, "message time")
        kept = found.get(message.key)
        if kept is None or time < kept.time:
            found[message.key] = Message(message.sequence, message.escalation_step, time)
    return [found[k] for k in sorted(found)]


def section(alert: Alert, key: str) -> Mapping[str, Any]:
    """An optional nested object (`device`, `location`, `region`, `case`) or an empty mapping."""
    value = alert.get(key)
    return value if isinstance(value, Mapping) else {}


def items(mapping: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    """An optional list of objects (`contacts`, `measures`), dropping anything that is not one."""
    value = mapping.get(key)
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, Mapping)]


def flags(alert: Alert) -> list[str]:
    value = alert.get("flags")
    return [str(flag) for flag in value] if isinstance(value, list) else []
