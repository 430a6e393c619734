"""Builds the delivery hook and worker for a runtime and connects them: the hook marks the
session, and a listener on the session factory wakes the worker right after that commit."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

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
        concurrency=settings.concurrency,
        concurrency_per_subscription=settings.concurrency_per_subscription,
        claim_lease_s=settings.claim_lease_s,
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
        session.info.pop(MARKS_KEY, None)
        jobs = session.info.pop(JOBS_KEY, None)
        if jobs:
            worker.submit(jobs)
        if session.info.pop(WAKE_KEY, False):
            worker.wake()

    event.listen(sessions, "after_commit", _after_commit)
    take_back_on_rollback(sessions)
    return worker, SubscriptionWatch(hook, sessions)


def take_back_on_rollback(sessions: sessionmaker[Session]) -> None:
    """A rollback takes back what was queued for after the commit since its transaction or
    savepoint began."""
    event.listen(sessions, "after_transaction_create", _mark_savepoint)
    event.listen(sessions, "after_soft_rollback", _take_back)


# What was queued for after the commit when each savepoint of the transaction began: a
# savepoint rolled back takes back what was queued inside it, and nothing queued before it (the
# escalation loop escalates each alert of a pass in a savepoint of its own). Kept until the
# transaction ends.
MARKS_KEY = "subscriptions.marks"


def _mark_savepoint(session: Session, transaction: SessionTransaction) -> None:
    if transaction.nested:
        marks = session.info.setdefault(MARKS_KEY, {})
        marks[transaction] = (len(session.info.get(JOBS_KEY, ())),
                              session.info.get(WAKE_KEY, False))


def _take_back(session: Session, transaction: SessionTransaction) -> None:
    """After a rollback: a savepoint's leaves what was queued before it; any other empties the
    queue (nothing of the transaction was committed)."""
    mark = session.info.get(MARKS_KEY, {}).pop(transaction, None) if transaction.nested else None
    if mark is None:
        for key in (JOBS_KEY, WAKE_KEY, MARKS_KEY):
            session.info.pop(key, None)
        return
    jobs_before, wake_before = mark
    if JOBS_KEY in session.info:
        del session.info[JOBS_KEY][jobs_before:]
    session.info[WAKE_KEY] = wake_before
