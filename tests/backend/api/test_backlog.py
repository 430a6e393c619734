"""What waits, read from the database at each scrape: unacknowledged broker messages, webhook
deliveries in flight, open alerts nobody acknowledged and urgent alerts the police did not
get; a database that does not answer is said so, not shown as an empty backlog; and with a
metrics token, only its bearer reads any of it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

from backend.alerts.models import Alert, OutboxMessage
from backend.api.app import create_app
from backend.api.backlog import BacklogCollector
from backend.subscriptions.models import Delivery, Subscription

NOW = datetime(2026, 12, 6, 21, 0, tzinfo=UTC)


def _values(families) -> dict[tuple[str, tuple], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in families for s in f.samples}


def _fill(sessions) -> None:
    ago = lambda seconds: NOW - timedelta(seconds=seconds)  # noqa: E731
    with sessions.begin() as s:
        p1 = Alert(type="panic", priority="P1", state="new", raised_at=ago(30))
        s.add_all([
            p1,
            Alert(type="panic", priority="P1", state="new", raised_at=ago(5)),
            Alert(type="battery_low", priority="P3", state="new", raised_at=ago(600)),
            Alert(type="zone_breach", priority="P1", state="acknowledged", raised_at=ago(90),
                  police_delivery="unreachable"),
            Alert(type="panic", priority="P1", state="resolved", raised_at=ago(900),
                  police_delivery="unreachable"),
        ])
        s.flush()
        s.add_all([
            OutboxMessage(channel="mqtt", target="t/police", payload=b"{}", status="pending",
                          created_at=ago(20)),
            OutboxMessage(channel="mqtt", target="t/police", payload=b"{}", status="sent",
                          created_at=ago(300)),
        ])
        sub = Subscription(name="police", url="https://police.example/hook", secret="whsec_x")
        s.add(sub)
        s.flush()
        for sequence, state, start in ((1, "retrying", ago(40)), (2, "delivered", ago(400))):
            s.add(Delivery(id=uuid.uuid4(), subscription_id=sub.id, alert_id=p1.id,
                           sequence=sequence, priority="P1", format="json", body=b"{}",
                           state=state, window_start=start))


def test_the_backlog_counts_what_waits_and_how_long(stack) -> None:
    _fill(stack.runtime.sessions)

    got = _values(BacklogCollector(stack.runtime.sessions, clock=lambda: NOW).collect())

    assert got[("schildwacht_backlog_read", ())] == 1
    assert got[("schildwacht_outbox_pending", ())] == 1
    assert got[("schildwacht_outbox_oldest_pending_seconds", ())] == 20
    assert got[("schildwacht_webhook_deliveries_in_flight", ())] == 1
    assert got[("schildwacht_webhook_oldest_in_flight_seconds", ())] == 40
    assert got[("schildwacht_alerts_unacknowledged", (("priority", "P1"),))] == 2
    assert got[("schildwacht_alerts_oldest_unacknowledged_seconds", (("priority", "P1"),))] == 30
    assert got[("schildwacht_alerts_unacknowledged", (("priority", "P3"),))] == 1
    assert got[("schildwacht_alerts_police_unreachable", ())] == 1  # the open one only


def test_the_api_serves_the_backlog_beside_its_counters(stack) -> None:
    _fill(stack.runtime.sessions)
    body = stack.api().get("/metrics").text

    names = {f.name for f in text_string_to_metric_families(body)}
    assert {"schildwacht_outbox_pending", "schildwacht_alerts_unacknowledged",
            "schildwacht_ingest_rejected"} <= names


def test_a_database_that_does_not_answer_is_said_so() -> None:
    engine = create_engine("postgresql+psycopg://postgres@127.0.0.1:1/none",
                           connect_args={"connect_timeout": 2})
    got = _values(BacklogCollector(sessionmaker(engine)).collect())
    assert got == {("schildwacht_backlog_read", ()): 0}
    engine.dispose()


def test_with_a_metrics_token_only_its_bearer_reads_the_metrics(stack) -> None:
    stack.runtime.settings.api.metrics_token = SecretStr("a-long-random-metrics-token")
    api = TestClient(create_app(stack.runtime))

    refused = api.get("/metrics")
    assert refused.status_code == 401 and "schildwacht_" not in refused.text
    assert api.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401
    granted = api.get("/metrics",
                      headers={"Authorization": "Bearer a-long-random-metrics-token"})
    assert granted.status_code == 200 and "schildwacht_outbox_pending" in granted.text
