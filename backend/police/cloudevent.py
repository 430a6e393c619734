"""The JSON police format: a CloudEvents 1.0 structured event carrying the alert document.

Attributes:

- `specversion` "1.0"; `id` `{alert_id}/{sequence}` (stable per alert and sequence, so receivers
  deduplicate retries and replays); an escalation's `{alert_id}/{sequence}/escalation/{step}`
  (it shares its sequence with the message it escalates, and must not be taken for a retry of
  it); `source` configurable (default `urn:schildwacht:backend`).
- `type` `nl.schildwacht.alert.{alert type}.{raised|updated|closed|escalated}` after the
  lifecycle rule in `document.message_kind` (the same rule picks CAP's Alert/Update/Cancel).
- `time` the transition's time (`updated_at`, or `raised_at` for the first message; for an
  escalation, when its step fell due);
  `subject` the alert id; `datacontenttype` `application/json`; `data` the alert document.
- Extension `sequence` (integer) so receivers can order messages of one alert.

The event is built and validated with the `cloudevents` SDK and serialised with orjson.
Sent over HTTP in structured mode with `Content-Type: application/cloudevents+json`.
"""

from __future__ import annotations

from typing import Any

import orjson
from cloudevents.core.exceptions import CloudEventValidationError
from cloudevents.core.v1.event import CloudEvent

from backend.police import document
from backend.police.document import Alert, MessageKind
from backend.police.errors import DocumentError

CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"
DEFAULT_SOURCE = "urn:schildwacht:backend"
TYPE_PREFIX = "nl.schildwacht.alert"
_TYPE_SUFFIX = {
    MessageKind.ALERT: "raised",
    MessageKind.UPDATE: "updated",
    MessageKind.CANCEL: "closed",
    MessageKind.ESCALATION: "escalated",
}


def event_id(alert: Alert) -> str:
    base = f"{document.alert_id(alert)}/{document.sequence(alert)}"
    if document.message_kind(alert) is MessageKind.ESCALATION:
        return f"{base}/escalation/{document.escalation_step(alert)}"
    return base


def event_type(alert: Alert) -> str:
    alert_type = str(document.required(alert, "type"))
    return f"{TYPE_PREFIX}.{alert_type}.{_TYPE_SUFFIX[document.message_kind(alert)]}"


def build(alert: Alert, *, source: str = DEFAULT_SOURCE) -> CloudEvent:
    """The CloudEvent for one alert message; raises `DocumentError` for an unusable document."""
    attributes: dict[str, Any] = {
        "specversion": "1.0",
        "id": event_id(alert),
        "source": source,
        "type": event_type(alert),
        "time": document.message_time(alert),
        "subject": document.alert_id(alert),
        "datacontenttype": "application/json",
        "sequence": document.sequence(alert),
    }
    try:
        return CloudEvent(attributes, data=dict(alert))
    except CloudEventValidationError as exc:
        raise DocumentError(f"alert {alert.get('alert_id')}: invalid CloudEvent: {exc}") from exc


def to_json(event: CloudEvent) -> bytes:
    """The structured-mode JSON of `event` (attributes at top level, `data` as JSON)."""
    body: dict[str, Any] = dict(event.get_attributes())
    time = body.get("time")
    if time is not None:
        body["time"] = time.isoformat(timespec="milliseconds")
    data = event.get_data()
    if data is not None:
        body["data"] = data
    return orjson.dumps(body)


def render(alert: Alert, *, source: str = DEFAULT_SOURCE) -> bytes:
    """The webhook/MQTT body of the JSON format for `alert`."""
    return to_json(build(alert, source=source))
