"""The long-lived parts of a Schildwacht process, built once from settings at the edge
(CLI or app lifespan) and closed on shutdown. Nothing connects at import time."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import paho.mqtt.client as mqtt
from device_protocol import Topics
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from backend.alerts.flows import AlertFlow
from backend.auth.throttle import LoginThrottle, MemoryCounts, RedisCounts
from backend.cases.changes import LocalChangeCounter, RedisChangeCounter
from backend.cases.snapshots import CaseSnapshots
from backend.db.engine import make_engine, make_session_factory
from backend.devices.directory import DeviceDirectory
from backend.hub.bus import EventBus, InProcessBus, RedisBus
from backend.measures.live import LiveMeasures
from backend.mqtt.publisher import PahoPublisher
from backend.outbox.dispatcher import OutboxDispatcher
from backend.police.sealing import SecretBox
from backend.redis_client import GuardedRedis, Probe, connect
from backend.regions import RegionIndex
from backend.settings import LoginSettings, Settings
from backend.state.store import InMemoryState, RedisState, StateStore
from backend.subscriptions.hook import SubscriptionWatch
from backend.subscriptions.wiring import install as install_deliveries
from backend.subscriptions.worker import DeliveryWorker

if TYPE_CHECKING:
    from backend.escalation.background import BackgroundLoops


def _alert_flow(settings: Settings, topics: Topics, regions: RegionIndex) -> AlertFlow:
    """The alert flow with the routing policy (loaded once) and the case hooks: case log
    entries, warn commands and pursuit mode."""
    from backend.caselog.hook import CaseLogHook
    from backend.cases.device_commands import DeviceCommandHook
    from backend.routing import load_policy

    policy = load_policy(settings.routing.policy_path)
    flow = AlertFlow(topics, regions, settings.routing.fallback_police_unit, policy=policy)
    flow.hooks += [
        CaseLogHook(),
        DeviceCommandHook(topics, policy, settings.supervision.pursuit_report_interval_s),
    ]
    return flow


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    redis: GuardedRedis | None
    state: StateStore
    bus: EventBus
    directory: DeviceDirectory
    regions: RegionIndex
    topics: Topics
    flow: AlertFlow
    dispatcher: OutboxDispatcher
    mqtt: mqtt.Client | None = None
    # The webhook delivery worker (backend.subscriptions); start it next to the dispatcher.
    deliveries: DeliveryWorker | None = None
    # Keeps the webhook subscriptions read, so that a raise does not read them (started with it).
    subscriptions: SubscriptionWatch | None = None
    # The geofence engine of this process, kept in step with the stored measures.
    geofences: LiveMeasures | None = None
    # Seals webhook secrets for the database and opens them to sign (backend.police.sealing).
    secrets: SecretBox = field(default_factory=SecretBox)
    # Closes the Redis client's breaker when Redis answers again (backend.redis_client).
    redis_probe: Probe | None = None
    # Slows down whoever fails to sign in to the console (backend.auth.throttle).
    login_throttle: LoginThrottle = field(
        default_factory=lambda: LoginThrottle(MemoryCounts(), LoginSettings()))
    _loops: BackgroundLoops | None = None

    def attach_mqtt(self, client: mqtt.Client) -> None:
        """Use this (connected or connecting) client for every downlink the outbox publishes."""
        self.mqtt = client
        self.dispatcher.attach(PahoPublisher(client, self.dispatcher.on_delivered))

    def broker_connected(self) -> bool:
        return self.mqtt is not None and self.mqtt.is_connected()

    def start_background(self, loops: bool = True) -> None:
        """Start this process's background work: the MQTT outbox and webhook deliveries, and
        with `loops` the escalation, supervision, custody and ping retention loops (safe to run
        in several processes at once). Ingest workers run without the loops: a supervision pass over
        every device would hold the interpreter while alarms wait."""
        from backend.escalation.background import BackgroundLoops

        self.dispatcher.start()
        if self.deliveries is not None:
            self.deliveries.start()
        if self.subscriptions is not None:
            self.subscriptions.start()
        if loops:
            self._loops = BackgroundLoops(self).start()

    @classmethod
    def build(cls, settings: Settings, bus: EventBus | None = None) -> Runtime:
        engine = make_engine(settings.database)
        sessions = make_session_factory(engine)
        client: GuardedRedis | None = None
        probe: Probe | None = None
        state: StateStore
        if settings.redis.url:
            client, probe = connect(settings.redis)
            state = RedisState(client, settings.redis.key_prefix)
            state.carry_over()
            bus = bus or RedisBus(client, settings.redis.key_prefix,
                                  heartbeat_s=settings.redis.retry_after_s,
                                  timeout_s=settings.redis.timeout_s)
        else:
            state = InMemoryState()
            bus = bus or InProcessBus()
        # Raised by every process after it changed cases, contacts or devices: the others
        # reload their case snapshots and device directory.
        prefix = settings.redis.key_prefix
        changes = (RedisChangeCounter.of_prefix(client, prefix)
                   if client is not None else LocalChangeCounter())
        topics = Topics(settings.protocol.topic_root)
        regions = RegionIndex.load()
        runtime = cls(
            settings=settings,
            engine=engine,
            sessions=sessions,
            redis=client,
            redis_probe=probe,
            state=state,
            bus=bus,
            directory=DeviceDirectory(sessions, settings.ingest.directory_refresh_s,
                                      changes=changes),
            regions=regions,
            topics=topics,
            flow=_alert_flow(settings, topics, regions),
            dispatcher=OutboxDispatcher(sessions, settings.ingest.outbox_resend_after_s,
                                        device_deadline_s=settings.outbox.device_deadline_s),
        )
        runtime.flow.cases = CaseSnapshots(changes=changes)
        if client is not None:
            # A change made while Redis was away is counted once it answers, in every process
            # (the API, where changes are made, does not watch the counter).
            client.breaker.on_close(runtime.flow.cases.pay_owed)
        runtime.flow.exercise_regions = frozenset(settings.police.exercise_regions)
        runtime.secrets = SecretBox.from_setting(settings.police.secret_keys)
        runtime.deliveries, runtime.subscriptions = install_deliveries(
            settings.police, sessions, runtime.flow, bus, secrets=runtime.secrets)
        runtime.login_throttle = LoginThrottle(
            RedisCounts(client) if client is not None else MemoryCounts(),
            settings.console.login, settings.redis.key_prefix)
        runtime.geofences = LiveMeasures(
            sessions, settings.geofence.to_config(), settings.geofence.reload_poll_s
        )
        return runtime

    def loop_problems(self) -> list[str]:
        """For the service manager's watchdog: a background loop of this process whose thread
        ended or whose pass is stuck (`process.stuck_after_s`); empty when healthy."""
        if self._loops is None:
            return []
        return self._loops.problems(self.settings.process.stuck_after_s)

    def close(self) -> None:
        """Stop the background work (if started) and release every connection."""
        if self._loops is not None:
            self._loops.stop()
            self._loops = None
        if self.dispatcher.running:
            self.dispatcher.stop()
        if self.deliveries is not None:
            self.deliveries.stop()
        if self.subscriptions is not None:
            self.subscriptions.stop()
        if isinstance(self.bus, RedisBus):
            self.bus.close()
        if self.redis_probe is not None:
            self.redis_probe.stop()
        if self.redis is not None:
            self.redis.close()
        self.engine.dispose()
