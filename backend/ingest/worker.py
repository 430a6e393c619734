"""The ingest worker.

Everything but alarms (fixes, status reports, OwnTracks) goes from the MQTT network thread into
the "other" lane, a thread of its own that works in batches. An alarm is raised on the network
thread itself, at once: no hand-over to another thread on its way in, and the same thread writes
the police feed as soon as it is done. That is one try; an alarm it cannot store (the database
is away) goes to the alarm lane, whose thread retries with back-off. So an alarm never waits
behind a batch of fixes; a deployment can go further and run alarms in a worker process of their
own (`IngestSettings.channels`). For each alarm, or batch:

1. runs every message through the pipeline (decisions only);
2. commits what the messages change (for alarms: alert, outbox rows and webhook deliveries, on
   PostgreSQL one autocommitted statement per alert; for fixes, in one transaction: pings,
   device status, zone alerts);
3. publishes right away, in order of urgency: the police feed and the device ack, then the
   webhook sends (in the delivery worker's pool), then the console events;
4. acknowledges the messages to the broker (manual PUBACK), once what they raised is committed:
   a crash before that means redelivery from the persistent session, never loss (safety
   invariant 1), and a redelivered alarm raises nothing new;
5. hands messages that raised alerts to the follow-up thread, which runs the follow-up (the
   alert's "raised" timeline entry, case log, device commands) in a second transaction, so that
   the next alarm never waits behind it; it first lets the alarm's webhook sends go out (at
   most `ingest.follow_up_wait_s` after the commit), which would otherwise share the
   interpreter with it. The broker's acknowledgement does not wait for it: a broker sends a
   client only so many unacknowledged messages (Mosquitto: `max_inflight_messages`), and
   follow-ups that keep failing would stop every device's alarms there. A follow-up that never
   runs (a crash, a failure) is finished by the follow-up sweep
   (`backend.alerts.follow_up_sweep`).

A message that fails in the pipeline is counted and logged by id; the worker never dies on input.
A failing commit is retried with bounded back-off and nothing is acknowledged meanwhile.
"""

from __future__ import annotations

import gc
import hashlib
import logging
import os
import queue
import signal
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
from device_protocol import Channel, ProtocolError, Topics
from device_protocol.codec import decode_alarm_lenient
from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import DataError, IntegrityError, SQLAlchemyError

from backend import metrics, process
from backend.alerts.flows import EACH_STATEMENT_COMMITS, Effects
from backend.alerts.models import OutboxMessage
from backend.db.errors import loggable
from backend.cases.snapshots import SnapshotWatch
from backend.devices.models import Device
from backend.devices.online import mark_online
from backend.devices.pings import PingRow, store_pings
from backend.ingest.alarm_timing import AlarmTiming
from backend.ingest.collector import IdleCollector
from backend.ingest.health import Busy, follow_up_problem, network_thread_problem
from backend.ingest.inbox import Inbox
from backend.ingest.rehearsal import rehearse_alarm
from backend.mqtt.client import connect, make_client
from backend.mqtt.network_loop import NetworkLoop
from backend.outbox.dispatcher import OutboxItem
from backend.pipeline.context import AlertDraft, Context, RawMessage
from backend.pipeline.pipeline import Pipeline, build_pipeline
from backend.pipeline.steps import Step, is_last_will, says_online
from backend.runtime import Runtime
from backend.settings import BrokerSettings
from backend.state.store import SEEN_AHEAD_S, PendingState
from backend.subscriptions.worker import Sends

log = logging.getLogger(__name__)

CHANNEL_NAMES = frozenset(c.value for c in Channel)

RETRY_DELAYS_S = (0.05, 0.2, 0.5, 1.0, 2.0, 5.0)  # then every 5 s until it works or we stop
# The database refused what a batch holds (a value, a constraint): trying the same again changes
# nothing, so the batch is not retried as a whole but taken apart (`_handle_in_lane`).
REFUSED = (DataError, IntegrityError)


def alarm_filter(topics: Topics) -> str:
    return f"{topics.root}/dev/+/{Channel.ALARM.value}"


def topic_filters(topics: Topics, channels: str) -> list[str]:
    """What a worker subscribes to: every uplink channel ("all"), only the alarms ("alarm"),
    or everything but the alarms ("other")."""
    every = topics.uplink_filters()
    alarm = alarm_filter(topics)
    if channels == "alarm":
        return [alarm]
    if channels == "other":
        return [f for f in every if f != alarm]
    return every


def subscriptions(topics: Topics, channels: str, broker: BrokerSettings) -> list[str]:
    """The worker's `topic_filters`, each in its shared subscription group where one is set:
    alarms only in `broker.alarm_share_group`, the others in `broker.share_group`. An alarm
    worker of a deployment whose fix workers share a group still takes every alarm itself."""
    alarm = alarm_filter(topics)
    shared = []
    for found in topic_filters(topics, channels):
        group = broker.alarm_share_group if found == alarm else broker.share_group
        shared.append(f"$share/{group.get_secret_value()}/{found}" if group else found)
    return shared


def batch_devices(
    topics: Topics, batch: list[RawMessage]
) -> tuple[list[str], list[tuple[str, str]]]:
    """The device ids on a batch's device topics and the (user, device) pairs on its OwnTracks
    topics, each once, in order. A topic that cannot be parsed is left out: the pipeline
    rejects its message."""
    ids: dict[str, None] = {}
    pairs: dict[tuple[str, str], None] = {}
    for raw in batch:
        try:
            topic = topics.parse(raw.topic)
        except ProtocolError:
            continue
        if topic.device_id is not None:
            ids[topic.device_id] = None
        elif topic.owntracks_user is not None and topic.owntracks_device is not None:
            pairs[(topic.owntracks_user, topic.owntracks_device)] = None
    return list(ids), list(pairs)


def bare_alarm_id(payload: bytes, max_bytes: int) -> str | None:
    """The id of an alarm raised bare after a failure: the one the pipeline gives it (the
    device's own, or derived from the payload when it has none usable); None when reading it
    fails too (the failure may be the reader's)."""
    try:
        return decode_alarm_lenient(payload, max_bytes).alarm.id
    except Exception:  # noqa: BLE001 - the caller derives an id from the payload
        return None


def follow_up_ids(follow_ups: list) -> str:
    """The ids of the alerts of these follow-ups, for a log line."""
    return ",".join(str(f.alert.id) for f in follow_ups)


def default_client_id(base: str, channels: str) -> str:
    """Workers of different channel sets never share an MQTT client id (nor its session)."""
    return base if channels == "all" else f"{base}-{channels}"


class Lane:
    """One processing thread's inbox, pipeline and view of the state store (fixes it accepts
    reach the shared store after its own commits)."""

    def __init__(
        self, name: str, runtime: Runtime, inbox: Inbox,
        extra: Callable[[PendingState], list[Step]],
    ) -> None:
        self.name = name
        self.inbox = inbox
        self.state = PendingState(runtime.state)
        self.pipeline: Pipeline = build_pipeline(
            runtime.settings.protocol, runtime.directory, self.state,
            extra(self.state) if name != "alarm" else [],
        )
        # Held while a batch of this lane is handled: by its thread or, for alarms, by paho's.
        self.busy = threading.Lock()
        # Fixes read every device's last fix: one round trip per batch beats one per fix. An
        # alarm with its own position and a fresh time reads no state at all, so the alarm lane
        # reads lazily, only what a message needs.
        self.prefetches_state = name != "alarm"


class IngestWorker:
    def __init__(
        self, runtime: Runtime, client_id: str | None = None, extra_steps: list[Step] | None = None
    ) -> None:
        self.rt = runtime
        s = runtime.settings
        self.client_id = client_id or default_client_id(s.broker.client_id, s.ingest.channels)
        # An alarm-only worker evaluates no fixes: it neither loads nor keeps the measures.
        self._zones = s.ingest.channels != "alarm" and runtime.geofences is not None
        if extra_steps is None and self._zones:
            from backend.pipeline.zones import zone_step

            def extra(state: PendingState) -> list[Step]:
                return [zone_step(runtime, state)]  # zones and proximity (geofences)
        else:
            def extra(state: PendingState) -> list[Step]:
                return list(extra_steps or [])
        # Two lanes, each its own thread: an alarm never waits behind a batch of fixes.
        # An alarm is handled the moment it arrives; fixes gather into batches.
        self.alarms = Lane("alarm", runtime, Inbox(), extra)
        self.fixes = Lane("other", runtime, Inbox(s.ingest.queue_max, s.ingest.batch_linger_s),
                          extra)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        # (kind, follow-ups, the webhook sends to let go first and until when); served once
        # started.
        self._after: queue.Queue[tuple[str, list, Sends | None, float] | None] = (
            queue.Queue(s.ingest.follow_up_queue_max))
        self._after_thread: threading.Thread | None = None
        self._network_thread = threading.local()  # `active` while it raises an alarm
        # What the network thread waits on and since when, for `problems` (`health`).
        self._network_busy: Busy | None = None
        # When the follow-up thread began its current follow-up, and when a store last
        # committed (`time.monotonic`), for `problems`.
        self._follow_up_since: float | None = None
        self._committed_at: float | None = None
        self._subscribed = threading.Event()
        self.client: mqtt.Client | None = None
        self._network: NetworkLoop | None = None  # drives the client's traffic once connected
        self._processed = 0
        self._given_up = 0  # messages left unacknowledged for good (`_give_up`)
        self._count_lock = threading.Lock()
        # Thread name -> when it last showed progress (`_beat`), for `problems`.
        self._beats: dict[str, float] = {}
        self._collector: IdleCollector | None = None
        # Where alarms are raised, each is logged with its time in the worker.
        self._alarm_timing = (AlarmTiming(runtime.engine) if s.ingest.channels != "other"
                              else None)

    @property
    def processed(self) -> int:
        return self._processed

    def _beat(self) -> None:
        """The calling thread is making progress: it took a batch, or tries a step again."""
        self._beats[threading.current_thread().name] = time.monotonic()

    def problems(self, now: float | None = None) -> list[str]:
        """What keeps this worker from taking in messages, for the service manager's watchdog
        (`backend.service_notify`): a thread of its own that ended, or that showed no progress
        for `process.stuck_after_s` (longer than any timeout of a step it waits on), paho's
        network thread gone or busy with one alarm or one wait for that long, a follow-up not
        done for that long while raises commit (`backend.ingest.health`). Empty when healthy.
        A database or broker that is away is not a problem of the worker's: it tries again,
        and a restart would change nothing."""
        now = time.monotonic() if now is None else now
        limit = self.rt.settings.process.stuck_after_s
        found = []
        own = [*self._threads, *([self._after_thread] if self._after_thread else [])]
        for thread in own:
            quiet_s = now - self._beats.get(thread.name, now)
            if not thread.is_alive():
                found.append(f"thread {thread.name} ended")
            elif quiet_s > limit:
                found.append(f"thread {thread.name} showed no progress for {quiet_s:.0f} s")
        if self._network is not None and not self._network.alive:
            found.append("the MQTT network thread ended")
        for problem in (network_thread_problem(self._network_busy, now, limit),
                        follow_up_problem(self._follow_up_since, self._committed_at, now, limit)):
            if problem is not None:
                found.append(problem)
        if self._given_up:
            found.append(f"{self._given_up} messages given up unacknowledged (a restart has "
                         "the broker send them again)")
        return found

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        b = self.rt.settings.broker
        client = make_client(b, self.client_id, persistent=True, manual_ack=True)
        filters = subscriptions(self.rt.topics, self.rt.settings.ingest.channels, b)

        def on_connect(c, userdata, flags, reason_code, properties) -> None:
            if not reason_code.is_failure:
                c.subscribe([(f, 1) for f in filters])
                log.info("ingest connected client=%s session_present=%s",
                         self.client_id, flags.session_present)

        def on_subscribe(c, userdata, mid, reason_codes, properties) -> None:
            self._subscribed.set()
            self._warm_this_thread()  # the MQTT network thread raises the alarms

        client.on_connect = on_connect
        client.on_subscribe = on_subscribe
        client.on_message = self._on_message
        self.rt.attach_mqtt(client)
        self.client = client
        self.rt.directory.load_all()  # every registered device in memory before traffic
        self._warm_this_thread()
        self._snapshots: SnapshotWatch | None = None
        if self.rt.settings.ingest.channels != "other":  # alarms: every case in memory too
            self._snapshots = SnapshotWatch(
                self.rt.flow.cases, self.rt.sessions, on_reload=self._freeze,
                refresh_s=self.rt.settings.ingest.directory_refresh_s)
            log.info("case snapshots loaded count=%d", self._snapshots.load())
            if self.rt.settings.ingest.rehearse:
                self._rehearse()
        if self._zones:
            self.rt.geofences.refresh()
        # The directory, the measures and the code loaded so far live as long as the process
        # (or until the next reload, which freezes its own): keep them out of the garbage
        # collector's full scans, pauses of 25-100 ms that an alarm would wait out.
        if self.rt.settings.process.freeze_heap:
            process.freeze_loaded()
        ingest = self.rt.settings.ingest
        if ingest.channels == "alarm" and ingest.collect_between_alarms:
            self._collector = IdleCollector(self._idle).start()
        self.rt.directory.start_refresh(on_reload=self._freeze)
        if self._snapshots is not None:
            self._snapshots.start()
        self._threads = [
            threading.Thread(target=self._run, args=(lane,), name=f"ingest-{lane.name}",
                             daemon=True)
            for lane in (self.alarms, self.fixes)
        ]
        self._after_thread = threading.Thread(target=self._run_follow_ups,
                                              name="ingest-follow-up", daemon=True)
        for thread in (*self._threads, self._after_thread):
            thread.start()
        self._network = connect(client, b, persistent=True, service="ingest")
        # Started means receiving: a first subscription misses what is published before it.
        if not self._subscribed.wait(b.connect_timeout_s):
            log.warning("ingest not subscribed within %.0fs; its network loop keeps trying",
                        b.connect_timeout_s)

    def _warm_this_thread(self) -> None:
        """pyproj builds a transformer per thread on its first use, 50-80 ms here: in each
        thread that raises alarms, before its first alarm, not during it."""
        self.rt.regions.locate(51.92, 4.48)

    def _rehearse(self) -> None:
        """The alarm path once, rolled back, before the first real alarm (`rehearsal`); twice,
        so that the database has its statements prepared. Never fatal: the worker starts."""
        try:
            took = [rehearse_alarm(self.rt) for _ in range(2)]
        except Exception:  # noqa: BLE001 - a cold first alarm is better than no worker
            log.exception("alarm rehearsal failed; the first alarm runs cold")
            return
        if took[0] is not None:
            log.info("alarm path rehearsed (rolled back) first_ms=%.0f second_ms=%.0f", *took)

    def _idle(self) -> bool:
        """No alarm being raised or waiting, and no follow-up waiting."""
        return (not self.alarms.busy.locked() and self.alarms.inbox.empty()
                and self._after.empty())

    def stop(self) -> None:
        self._stop.set()
        if self._collector is not None:
            self._collector.stop()
        self.rt.directory.stop_refresh()
        if getattr(self, "_snapshots", None) is not None:
            self._snapshots.stop()
        for lane in (self.alarms, self.fixes):
            lane.inbox.wake()  # a lane waiting for its next batch ends now
        for thread in self._threads:
            thread.join(timeout=10)
        if self._after_thread is not None:  # after the lanes: it finishes what they handed on
            self._after.put(None)  # behind the last of it: then it ends
            self._after_thread.join(timeout=10)
        if self._network is not None:
            self._network.stop()
        log.info("ingest worker stopped client=%s processed=%d", self.client_id, self._processed)

    def _freeze(self) -> None:
        """After a reload: what was loaded joins the frozen heap (`process.freeze_heap`)."""
        if self.rt.settings.process.freeze_heap:
            gc.freeze()

    # -- the MQTT network thread: queue fixes, raise alarms -----------------------------------
    def _on_message(self, client, userdata, msg: mqtt.MQTTMessage) -> None:
        raw = RawMessage(msg.topic, msg.payload, msg.qos, msg.mid, time.time(), msg.retain)
        if not self.rt.topics.is_alarm(msg.topic):
            self._to_fix_lane(raw)
        elif not self._alarm_now(raw):
            self.alarms.inbox.put(raw)

    def _to_fix_lane(self, raw: RawMessage) -> None:
        """Into the fix lane's inbox, waiting while it is full (back-pressure to the broker): a
        wait the watchdog hears of once it is too long (`problems`)."""
        if self.fixes.inbox.offer(raw):
            return
        self._network_busy = ("waiting for room in the fix lane's inbox", time.monotonic())
        try:
            self.fixes.inbox.put(raw)
        finally:
            self._network_busy = None

    def _alarm_now(self, raw: RawMessage) -> bool:
        """Raise an alarm here, on the MQTT network thread: no hand-over to another thread on the
        way in, and this thread writes the police feed to the socket as soon as it is
        committed (`_fan_out`), before the console event and the rest. One try only (this
        thread also keeps the connection alive): an alarm it cannot store, or that would
        overtake alarms still queued, goes to the alarm lane, which retries with back-off."""
        lane = self.alarms
        if not lane.inbox.empty() or not lane.busy.acquire(blocking=False):
            return False
        self._network_thread.active = True
        # A raise that hangs (a database connection gone half-open) is for the watchdog.
        self._network_busy = ("raising an alarm", time.monotonic())
        try:
            return self.handle(lane, [raw], retry=False)
        except SQLAlchemyError as exc:  # refused: by type, the server's DETAIL holds the row
            log.error("alarm failed on the network thread (%s); handed to the lane",
                      loggable(exc))
            return False
        except Exception:  # noqa: BLE001 - the lane tries again; the network thread lives on
            log.exception("alarm failed on the network thread; handed to the lane")
            return False
        finally:
            self._network_busy = None
            self._network_thread.active = False
            lane.busy.release()

    # -- processing threads, one per lane ------------------------------------------------------
    def _run(self, lane: Lane) -> None:
        self._warm_this_thread()
        limit = self.rt.settings.ingest.batch_max
        while not self._stop.is_set():
            self._beat()
            batch = lane.inbox.next_batch(limit)
            if batch:
                self._handle_in_lane(lane, batch)

    def _handle_in_lane(self, lane: Lane, batch: list[RawMessage], again: bool = False) -> None:
        """Handle a batch. The database away (an error of the database while the pipeline
        looks a device up; the store itself retries in `_with_retries`) is waited for with
        back-off, as long as it takes: nothing is acknowledged meanwhile, nothing rejected. A
        batch the database refuses (`REFUSED`) is handled again in halves, down to the message
        it refuses. An unexpected error (a bug), or a message refused alone, is tried again with
        back-off a bounded number of times; then a fix or status report is rejected (as bad
        input is: acknowledged, counted, logged by id), an alarm the database refused is raised
        bare (`_store_bare`), and any other alarm given up unacknowledged (`_give_up`), never
        acknowledged unstored. The lane's thread lives on: the next alarm must not wait behind
        one that cannot be handled."""
        failures = 0
        refused = False  # a single message the database refused (not stored: not raised yet)
        for attempt in range(10**9):
            self._beat()
            try:
                with lane.busy:
                    self.handle(lane, batch, again=again or attempt > 0)
                return
            except REFUSED as exc:
                if len(batch) > 1:
                    log.error("%s batch of %d refused by the database (%s): in halves",
                              lane.name, len(batch), type(exc).__name__)
                    half = len(batch) // 2
                    self._handle_in_lane(lane, batch[:half], again=True)
                    self._handle_in_lane(lane, batch[half:], again=True)
                    return
                failures += 1
                refused = True
                log.error("%s message refused by the database (%s), attempt %d", lane.name,
                          type(exc).__name__, failures)
                if failures > len(RETRY_DELAYS_S):
                    break
            except SQLAlchemyError as exc:
                metrics.STORE_FAILURES.labels(lane.name).inc()
                log.error("%s batch of %d waits for the database (%s)", lane.name, len(batch),
                          type(exc).__name__)
            except Exception:  # noqa: BLE001 - no message may stop the lane
                failures += 1
                refused = False
                log.exception("%s batch of %d failed (attempt %d)", lane.name, len(batch),
                              failures)
                if failures > len(RETRY_DELAYS_S):
                    break
            if self._stop.wait(RETRY_DELAYS_S[min(attempt, len(RETRY_DELAYS_S) - 1)]):
                return  # stopping: unacknowledged, the broker redelivers after the restart
        if lane is not self.alarms:
            self._refuse(batch)
        elif not (refused and self._store_bare(batch[0])):
            self._give_up(lane.name, len(batch))

    def _store_bare(self, raw: RawMessage) -> bool:
        """An alarm the database refuses as sent is raised bare (a panic of its device, no
        position), flagged `unstorable`: the desk hears of the press, and the broker's message
        is acknowledged once that alert is stored. With the alarm's own id first (the device
        hears `received` for its alarm); when the database refuses that too (the id may be
        what it refuses), with one derived from the payload. False when even that cannot be
        stored."""
        for own_id in (True, False):
            try:
                ctx = self._fallback_context(raw, flag="unstorable", own_id=own_id)
                if ctx.done:
                    return False
                log.error("alarm device=%s refused by the database: raised bare own_id=%s",
                          ctx.device.id, own_id)
                with self.alarms.busy:
                    return self._commit([ctx], kind="alarm")
            except REFUSED as exc:
                log.error("the bare alarm was refused too (own_id=%s, %s)", own_id,
                          loggable(exc))
            except SQLAlchemyError as exc:  # by type: the server's DETAIL may hold values
                log.error("the bare alarm failed too (%s)", loggable(exc))
                return False
            except Exception:  # noqa: BLE001 - given up unacknowledged, the lane lives on
                log.exception("the bare alarm failed too")
                return False
        return False

    def _refuse(self, batch: list[RawMessage]) -> None:
        """Fixes or status reports that cannot be stored, whatever is tried: rejected as bad
        input is (acknowledged, counted, logged by device id), so that they do not come back."""
        contexts = [Context(raw) for raw in batch]
        for ctx in contexts:
            ctx.reject("unstorable", "the database refused it")
            metrics.REJECTED.labels("unstorable").inc()
            try:
                topic = self.rt.topics.parse(ctx.raw.topic)
                device, channel = topic.device_id or "-", topic.channel.value
            except ProtocolError:  # a message of the batch rejected for its topic
                device, channel = "-", "unknown"
            log.warning("rejected device=%s channel=%s reason=unstorable", device, channel)
        self._ack(contexts)

    def _give_up(self, what: str, count: int) -> None:
        """Messages left unacknowledged for good: the broker sends them again only on a new
        connection, so from now on the watchdog hears of it (`problems`) and a supervised
        worker is restarted, to have them redelivered."""
        metrics.STORE_FAILURES.labels(what).inc()
        with self._count_lock:
            self._given_up += count
        log.critical("%s: %d messages given up unacknowledged: redelivered after a restart",
                     what, count)

    def handle(self, lane: Lane, batch: list[RawMessage], retry: bool = True,
               again: bool = False) -> bool:
        """Run, store, fan out, acknowledge and (via the follow-up thread) follow up one batch.
        False when it was not stored: stopping, or a failed try without `retry`; nothing was
        acknowledged.
        `again`: the batch is handled again after a try that failed."""
        if lane.prefetches_state:
            device_ids, pairs = batch_devices(self.rt.topics, batch)
        else:  # alarms come on device topics only: nothing more to parse on their path
            device_ids, pairs = [r.topic.split("/")[-2] for r in batch if "/dev/" in r.topic], []
        lane.state.begin()
        try:
            self.rt.directory.prefetch(device_ids)
        except SQLAlchemyError as exc:
            log.error("prefetch failed (%s); devices are looked up one by one", loggable(exc))
        if lane.prefetches_state:
            # The measures, brought up to date here and only here: the whole batch is
            # evaluated against one set of them (the alarm lane evaluates none).
            lane.pipeline.refresh()
            # OwnTracks devices (a victim's phone) by their pair: their states are rolled back
            # and taken over as any device's. The database away: the batch waits for it.
            device_ids += self._owntracks_devices(pairs)
            device_ids += lane.pipeline.related_devices(device_ids)
            lane.state.prefetch(device_ids)
            lane.pipeline.begin_batch(device_ids, again)
        contexts = [self._run_pipeline(lane, raw) for raw in batch]
        stored = self._commit(contexts, kind=lane.name, retry=retry)
        if stored:
            lane.state.flush()
            with self._count_lock:
                self._processed += len(batch)
        return stored

    def _owntracks_devices(self, pairs: list[tuple[str, str]]) -> list[str]:
        """The ids of the registered devices of these OwnTracks (user, device) pairs."""
        found = (self.rt.directory.by_owntracks(user, device) for user, device in pairs)
        return [info.id for info in found if info is not None]

    def _run_pipeline(self, lane: Lane, raw: RawMessage) -> Context:
        try:
            ctx = lane.pipeline.run(raw)
        except SQLAlchemyError:
            raise  # the database away (a device looked up), not the message: try it later
        except Exception:  # noqa: BLE001 - no input may kill the worker
            # The channel only: an OwnTracks topic ends in the name its user gave the phone.
            last = raw.topic.rsplit("/", 1)[-1]
            log.exception("pipeline error topic_channel=%s",
                          last if last in CHANNEL_NAMES else "other")
            ctx = self._fallback_context(raw)
        channel = ctx.topic.channel.value if ctx.topic else "unknown"
        if ctx.rejection is not None:
            metrics.REJECTED.labels(ctx.rejection.reason).inc()
            metrics.MESSAGES.labels(channel, "rejected").inc()
            # The registered device (an OwnTracks phone's too: its topic names a user, who is
            # not logged), else the id in the topic.
            device = (ctx.device.id if ctx.device else
                      ctx.topic.device_id if ctx.topic and ctx.topic.device_id else "-")
            log.warning("rejected device=%s channel=%s reason=%s detail=%s",
                        device, channel, ctx.rejection.reason, ctx.rejection.detail)
        else:
            metrics.MESSAGES.labels(channel, "ignored" if ctx.ignored else "accepted").inc()
        return ctx

    def _fallback_context(self, raw: RawMessage, flag: str = "processing_error",
                          own_id: bool = True) -> Context:
        """A pipeline bug must not lose an alarm: raise it bare, flagged. An alarm whose
        device cannot be looked up either is not rejected (a rejection is acknowledged): the
        error goes up, and the alarm is tried again and never acknowledged unstored. The bare
        alert's message id is the alarm's own, as the pipeline reads it (`bare_alarm_id`), so
        that the device's ack names its alarm and a retransmission or a redelivery handled
        normally is still one alert; without `own_id`, or when even reading the id fails, one
        derived from the payload ("err-...")."""
        ctx = Context(raw)
        try:
            ctx.topic = self.rt.topics.parse(raw.topic)
        except Exception:  # noqa: BLE001
            ctx.reject("internal_error", "pipeline failed")
            return ctx
        if ctx.topic.channel is not Channel.ALARM:
            ctx.reject("internal_error", "pipeline failed")
            return ctx
        device = self.rt.directory.get(ctx.topic.device_id or "")
        if device is not None:
            ctx.device = device
            ctx.alarm = decode_alarm_lenient(b"", 0)
            max_bytes = self.rt.settings.protocol.max_payload_bytes
            message_id = bare_alarm_id(raw.payload, max_bytes) if own_id else None
            ctx.alerts = [AlertDraft(
                type="panic", device_id=device.id, case_id=device.case_id,
                message_id=message_id or "err-" + hashlib.sha256(raw.payload).hexdigest()[:32],
                raised_at=raw.received_at, flags=[flag, "no_fix"],
                exercise=device.exercise,
            )]
        else:
            ctx.reject("internal_error", "pipeline failed")
        return ctx

    def _commit(self, contexts: list[Context], kind: str, retry: bool = True) -> bool:
        """Store and fan out the police feed, acknowledge the messages to the broker, then
        the follow-up (case log, device commands), in the follow-up thread when it runs.
        False when stopped before the store committed: nothing is acknowledged, so the broker
        redelivers after a restart.

        The acknowledgement waits for the commit, not for the follow-up: what the alert needs
        is durable then (the alert, its police feed and device ack in the outbox, its webhook
        deliveries), and a follow-up that never runs is finished by the follow-up sweep. A
        broker sends a client only so many unacknowledged messages (Mosquitto's
        `max_inflight_messages`, 20 by default): follow-ups that keep failing would otherwise
        stop the alarms of every device at the broker."""
        accepted = [c for c in contexts if not c.done]
        follow_ups: list = []
        sends = None
        if accepted:
            # In order of urgency: the police feed, the webhooks (held until the feed is on
            # the wire), the console.
            with self._webhooks_after_feed() as sends:
                if kind == "alarm" and self._alarm_timing is not None:
                    self._alarm_timing.start(accepted)
                effects = self._with_retries(kind, lambda: self._store(accepted, kind), retry)
                if effects is None:
                    return False
                self._committed_at = time.monotonic()
                self._put_on_wire(effects.outbox)
            self._publish_events(effects)
            follow_ups = effects.follow_ups
        self._ack(contexts)
        if follow_ups and self._after_thread is not None:
            wait_until = time.monotonic() + self.rt.settings.ingest.follow_up_wait_s
            self._hand_on((kind, follow_ups, sends, wait_until))
        elif follow_ups:
            self._finish(kind, follow_ups)
        return True

    def _hand_on(self, item: tuple[str, list, Sends | None, float]) -> None:
        """A follow-up to the follow-up thread. A lane waits while its queue is full; the
        network thread never does (it would read no alarm, send no keepalive meanwhile): a
        follow-up that finds no room is left to the follow-up sweep (the messages are
        acknowledged, their alerts committed)."""
        if not getattr(self._network_thread, "active", False):
            self._after.put(item)
            return
        try:
            self._after.put_nowait(item)
        except queue.Full:
            metrics.STORE_FAILURES.labels(f"{item[0]} follow-up").inc()
            log.error("follow-up queue full: the follow-up of alerts ids=%s is left to the "
                      "follow-up sweep", follow_up_ids(item[1]))

    def _finish(self, kind: str, follow_ups: list) -> None:
        """Run the follow-up until it succeeds, or the worker stops (the sweep finishes it)."""
        more = self._with_retries(kind, lambda: self._follow_up(follow_ups))
        if more is not None:
            self._fan_out(more)

    def _run_follow_ups(self) -> None:
        """Until stopped and every handed-on follow-up is done (or failed: the follow-up sweep
        finishes it)."""
        while True:
            self._beat()
            try:
                item = self._after.get(timeout=0.2)
            except queue.Empty:
                item = None
            if item is None:  # nothing handed on, or the lanes stopped (`stop`)
                if self._stop.is_set() and not any(t.is_alive() for t in self._threads):
                    return
                continue
            kind, follow_ups, sends, wait_until = item
            if sends is not None:  # the webhooks first; a late follow-up does not wait
                sends.wait(wait_until - time.monotonic())
            self._follow_up_since = time.monotonic()
            try:
                self._finish(kind, follow_ups)
            except SQLAlchemyError as exc:  # refused: by type, the server's DETAIL holds the row
                metrics.STORE_FAILURES.labels(f"{kind} follow-up").inc()
                log.error("follow-up of alerts ids=%s failed (%s): the follow-up sweep "
                          "finishes it", follow_up_ids(follow_ups), loggable(exc))
            except Exception:  # noqa: BLE001 - the follow-up sweep finishes it
                metrics.STORE_FAILURES.labels(f"{kind} follow-up").inc()
                log.exception("follow-up of alerts ids=%s failed: the follow-up sweep "
                              "finishes it", follow_up_ids(follow_ups))
            finally:
                self._follow_up_since = None

    def _webhooks_after_feed(self) -> AbstractContextManager[Sends | None]:
        deliveries = self.rt.deliveries
        return deliveries.held() if deliveries is not None else nullcontext()

    def _with_retries(self, kind: str, work: Callable[[], Effects], retry: bool = True
                      ) -> Effects | None:
        """Run a database step until it succeeds (bounded back-off between tries), or None
        when the worker is stopping (or, without `retry`, after a failed first try). What the
        database refuses (`REFUSED`) is raised: trying it again would change nothing."""
        for attempt in range(10**9):
            if self._stop.is_set() and attempt > 0:
                return None
            self._beat()
            try:
                started = time.perf_counter()
                result = work()
                metrics.COMMIT_SECONDS.labels(kind).observe(time.perf_counter() - started)
                return result
            except REFUSED:
                metrics.STORE_FAILURES.labels(kind).inc()
                raise  # what the batch holds: the lane takes it apart
            except SQLAlchemyError as exc:
                metrics.STORE_FAILURES.labels(kind).inc()
                if not retry:
                    log.error("store failed (%s), handed to the lane", type(exc).__name__)
                    return None
                delay = RETRY_DELAYS_S[min(attempt, len(RETRY_DELAYS_S) - 1)]
                log.error("store failed (%s), retry in %.2fs", type(exc).__name__, delay)
                self._stop.wait(delay)
        return None

    def _follow_up(self, pending: list) -> Effects:
        if self.rt.settings.ingest.fault_point == "before_follow_up":
            self._await_broker_ack([item.alert.id for item in pending])
            log.critical("fault point before_follow_up: killing this process")
            os.kill(os.getpid(), signal.SIGKILL)
        with self.rt.sessions.begin() as session:
            effects = self.rt.flow.follow_up(session, pending)
            mark_online(session, [i.alert.device_id for i in pending if i.alert.device_id])
            return effects

    def _await_broker_ack(self, alert_ids: list, timeout_s: float = 5.0) -> None:
        """Fault point only: "published" means the broker acknowledged the alerts' outbox rows
        (the dispatcher marks them sent), not merely that paho queued them."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self.rt.sessions() as session:
                pending = session.scalar(
                    select(func.count()).select_from(OutboxMessage).where(
                        OutboxMessage.alert_id.in_(alert_ids), OutboxMessage.status == "pending"))
            if not pending:
                return
            time.sleep(0.05)

    def _store(self, contexts: list[Context], kind: str) -> Effects:
        rt = self.rt
        drafts = [d for c in contexts for d in c.alerts]
        pings = [
            PingRow(c.device.id, f.tst, c.raw.received_at, f.lat, f.lon, f.acc, f.vel, f.batt)
            for c in contexts if c.device is not None for f in c.fixes
        ]
        statuses = [c for c in contexts if c.status is not None and c.device is not None]
        # A fix shows its device online again after a Last Will (an alarm too, in its
        # follow-up: not on the raise's path); a status report says so itself (`says_online`).
        heard = [] if kind == "alarm" else [
            c.device.id for c in contexts if c.device is not None and c.status is None]
        committed = None
        with rt.sessions.begin() as session:
            if kind == "alarm":
                if rt.settings.ingest.fault_point == "before_commit":
                    log.critical("fault point before_commit: killing this process")
                    os.kill(os.getpid(), signal.SIGKILL)
                if session.get_bind().dialect.name == "postgresql":
                    # What an alarm writes is one statement per alert (`raise_alert`): in
                    # autocommit each is its own transaction, without the round trips of
                    # BEGIN and COMMIT. A redelivery after a crash between two of them finds
                    # the first alert stored and finishes it (`AlertFlow.raise_alerts`).
                    session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
                    session.info[EACH_STATEMENT_COMMITS] = True
                    # Each alert is then committed when its statement returns: its police feed
                    # goes on the wire at once, then its webhook sends start, before the rest
                    # of the raise and the session's end.
                    committed = self._feed_committed
            effects = (
                rt.flow.raise_alerts(session, drafts, follow_up=False, committed=committed)
                if drafts else Effects()
            )
            store_pings(session, pings)
            mark_online(session, heard)
            for c in statuses:
                st = c.status
                values = {
                    k: v for k, v in {
                        "online": says_online(c), "battery": st.batt, "charging": st.charging,
                        "tamper": st.tamper, "firmware": st.fw,
                    }.items() if v is not None
                }
                received = datetime.fromtimestamp(c.raw.received_at, UTC)
                if not is_last_will(c):  # the broker's, not a report of the device's
                    values["last_status_at"] = received
                # Not over a newer report: with workers sharing the subscription, an older one
                # (a Last Will, an old tamper) may be stored after it. A stored time further
                # ahead than `SEEN_AHEAD_S` came from a node whose clock ran ahead: replaced.
                session.execute(update(Device).where(
                    Device.id == c.device.id,
                    or_(Device.last_status_at.is_(None), Device.last_status_at <= received,
                        Device.last_status_at > received + timedelta(seconds=SEEN_AHEAD_S)),
                ).values(**values))
        for alert in effects.alerts:
            metrics.ALERTS_RAISED.labels(alert.type).inc()
        return effects

    def _ack(self, contexts: list[Context]) -> None:
        if self.client is None:
            return
        for c in contexts:
            if c.raw.qos > 0:
                self.client.ack(c.raw.mid, c.raw.qos)

    def _fan_out(self, effects: Effects) -> None:
        self._put_on_wire(effects.outbox)
        self._publish_events(effects)

    def _feed_committed(self, items: list[OutboxItem]) -> None:
        """An alert's statement committed: its police feed on the wire, then its webhooks."""
        self._put_on_wire(items)
        if self.rt.deliveries is not None:
            self.rt.deliveries.release()

    def _put_on_wire(self, items: list[OutboxItem]) -> None:
        """The police feed and device messages, on the wire now."""
        self.rt.dispatcher.send(items)
        handed_at = time.time()  # before the write: a listener may have it before we go on
        if items and getattr(self._network_thread, "active", False) and self.client:
            # paho writes what other threads publish from its own loop; on that thread itself
            # (an alarm raised in `_alarm_now`) it can write now, not after the callback.
            self.client.loop_write()
        if items and self._alarm_timing is not None:
            self._alarm_timing.on_wire(handed_at)

    def _publish_events(self, effects: Effects) -> None:
        for event in effects.events:
            self.rt.bus.publish(event)
