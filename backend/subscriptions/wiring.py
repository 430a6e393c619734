"""Builds the delivery hook and worker for a runtime and connects them: the hook marks the
session, and a listener on the session factory wakes the worker right after that commit."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from backend.alerts.flows import AlertFlow
from backend.hub.bus import EventBus
from backend.police import cap
from backend.police.client import Timeouts, Urllib3WebhookSender, WebhookSender
from backend.police.retry import RetryPolicy
from backend.police.sealing import SecretBox
from backend.settings import PoliceSettings
from backend.subscriptions.hook import (
    JOBS_KEY,
    WAKE_KEY,
    DeliveryHook,
    SubscriptionWatch,
)
from backend.subscriptions.worker import DeliveryWorker, WorkerConfig


def worker_config(settings: PoliceSettings) -> WorkerConfig:
    policy = RetryPolicy(
        base_delay_s=settings.base_delay_s, max_delay_s=settings.max_delay_s,
        min_delay_s=settings.min_delay_s, max_retry_after_s=settings.max_retry_after_s,
        deadline_s=settings.deadline_s,
    )
    return WorkerConfig(
        policy=policy, poll_interval_s=settings.poll_interval_s, batch_size=settings.batch_size,
        concurrency=settings.concurrency, claim_lease_s=settings.claim_lease_s,
        urgent_priorities=tuple(settings.urgent_priorities),
    )


def timeouts(settings: PoliceSettings) -> Timeouts:
    return Timeouts(connect_s=settings.connect_timeout_s, read_s=settings.read_timeout_s,
                    write_s=settings.write_timeout_s, total_s=settings.total_timeout_s)


def _documents(s: Session, alerts: list[Any]) -> list[dict[str, Any]]:
    from backend.alerts.views import (
        documents,  # the console's document, with case context
    )

    return documents(s, alerts)


def install(
    settings: PoliceSettings, sessions: sessionmaker[Session], flow: AlertFlow, bus: EventBus,
    sender: WebhookSender | None = None, secrets: SecretBox | None = None,
) -> tuple[DeliveryWorker, SubscriptionWatch]:
    """Register the delivery hook on `flow`; return the worker and the watch that keeps the
    hook's subscriptions read (neither started)."""
    # As many kept-alive connections per receiver as sends run in parallel.
    sender = sender or Urllib3WebhookSender(timeouts(settings), pool_size=settings.concurrency)
    worker = DeliveryWorker(sessions, sender, bus, worker_config(settings), documents=_documents,
                            secrets=secrets)
    profile = cap.CapProfile(sender=settings.cap_sender)
    hook = DeliveryHook(profile, settings.cloudevent_source, settings.urgent_priorities)
    hook.send_now = worker.lease_if_running
    hook.submit = worker.submit
    flow.hooks.append(hook)

    def _after_commit(session: Session) -> None:
        if session.in_nested_transaction():
            return  # a savepoint released (the escalation loop's): nothing is committed yet
        jobs = session.info.pop(JOBS_KEY, None)
        if jobs:
            worker.submit(jobs)
        if session.info.pop(WAKE_KEY, False):
            worker.wake()

    def _after_rollback(session: Session) -> None:
        session.info.pop(WAKE_KEY, None)
        session.info.pop(JOBS_KEY, None)

    event.listen(sessions, "after_commit", _after_commit)
    event.listen(sessions, "after_soft_rollback", lambda s, _tx: _after_rollback(s))
    return worker, SubscriptionWatch(hook, sessions)
