"""The one typed settings tree of Schildwacht.

Every value comes from the environment with the prefix `SCHILDWACHT_` and `__` between levels,
for example `SCHILDWACHT_DATABASE__URL` or `SCHILDWACHT_BROKER__PORT`. The defaults are the
embedded ones (SQLite, in-process state, embedded MQTT broker), so a fresh checkout runs the demo
with no services installed. Secrets are `SecretStr`; a placeholder secret fails at start-up.

Settings are built once at the edge (`Settings()` in the CLI or the app factory) and passed in;
nothing reads the environment at import time.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import (
    BaseModel,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

# No bearer token lives longer than this, whatever the settings say (two years).
MAX_TOKEN_LIFETIME_S = 2 * 365 * 86_400
# A shared subscription group's name: a secret, as long as 16 random bytes in base64url.
SHARE_GROUP = re.compile(r"[A-Za-z0-9_-]{22,}")
PLACEHOLDER_SECRETS = {"", "changeme", "change-me", "secret", "admin", "password", "token", "xxx"}


def _reject_placeholder(value: SecretStr | None, name: str) -> SecretStr | None:
    if value is not None and value.get_secret_value().strip().lower() in PLACEHOLDER_SECRETS:
        raise ValueError(f"{name} is a placeholder: set a real secret in the environment")
    return value


class DatabaseSettings(BaseModel):
    # SQLite for the embedded default; postgresql+psycopg://... for production.
    url: str = "sqlite:///./schildwacht.db"
    pool_size: int = Field(10, ge=1, le=100)
    connect_timeout_s: float = Field(5.0, gt=0)
    statement_timeout_ms: int = Field(5_000, ge=100)
    # How long what this process sent may stay unacknowledged by the server's host before the
    # kernel gives up the connection (libpq `tcp_user_timeout`). A connection gone half-open (a
    # failover, a proxy that stops answering) would otherwise hold a statement for the ~15 min
    # of TCP retransmissions: `statement_timeout` is the server's and never fires there, and
    # keepalives probe only an idle connection. A slow statement is not cut short by it: the
    # server's host acknowledges what it received at once.
    tcp_user_timeout_ms: int = Field(10_000, ge=1_000)
    # Test each pooled connection with a round trip before use. Off: that round trip would be
    # on every alarm's path. A connection broken by a database restart fails one transaction
    # instead; SQLAlchemy then drops the whole pool, and the ingest worker retries (bounded).
    pre_ping: bool = False
    pool_recycle_s: int = Field(1_800, ge=60)
    # Server-side prepared statements (psycopg): a statement is prepared the n-th time a
    # connection runs it (None: never), and stays prepared for the connection's life (see
    # `backend.db.engine`: a rollback keeps them).
    prepare_threshold: int | None = Field(1, ge=0)
    # What the server shows for this process's connections (`pg_stat_activity`, its logs):
    # unset, each command names itself ("schildwacht ingest alarm", "schildwacht api").
    application_name: str | None = Field(None, max_length=63)

    @property
    def is_postgres(self) -> bool:
        return self.url.startswith("postgresql")


class RedisSettings(BaseModel):
    # None: in-process state and hub (embedded); "redis://host:6379/0" for production.
    url: str | None = None
    # A command that gets no answer within this long fails, and fails the next ones at once
    # until Redis answers again (asked every `retry_after_s`; backend/redis_client.py).
    timeout_s: float = Field(0.5, gt=0)
    retry_after_s: float = Field(1.0, gt=0)
    key_prefix: str = "sw"


class BrokerSettings(BaseModel):
    # embedded=True starts an in-process amqtt broker (MQTT 3.1.1) on host:port.
    embedded: bool = True
    host: str = "127.0.0.1"
    port: int = Field(1883, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    protocol: Literal["5", "3.1.1"] = "5"
    client_id: str = "schildwacht-ingest"
    # MQTT 5 shared subscription groups (None: a plain subscription). Fix workers share fixes and
    # status reports in `share_group`. Alarms are shared only in `alarm_share_group`, a setting
    # of their own for more than one alarm worker: without it an alarm worker takes every alarm
    # on a subscription of its own, whatever `share_group` says.
    # Mosquitto 2.0 checks no subscription against its ACL: a device that knows a group's name
    # can join it, and the broker then hands it its turn of the group's messages, which the ACL
    # keeps from it: they are lost. So a group's name is a secret of the deployment: generated
    # (`python -c 'import secrets; print(secrets.token_urlsafe(24))'`), at least 22 characters of
    # [A-Za-z0-9_-], kept with the passwords, in no log and no repository (README).
    share_group: SecretStr | None = None
    alarm_share_group: SecretStr | None = None
    keepalive_s: int = Field(30, ge=5, le=600)
    session_expiry_s: int = Field(3_600, ge=0)
    connect_timeout_s: float = Field(10.0, gt=0)
    # After a lost connection the first try comes after reconnect_min_s, each failed one
    # doubles the wait up to reconnect_max_s (`backend/mqtt/network_loop.py`). Alarms sent
    # meanwhile wait at the broker: a short first wait delivers them soon after a broker
    # restart or a network fault.
    reconnect_min_s: float = Field(0.1, gt=0, le=60)
    reconnect_max_s: float = Field(30.0, gt=0, le=600)
    # TLS to the broker (the backend's port 8884 in deploy/mosquitto/; 1883 is plain MQTT on
    # its loopback; 8883 is the devices', where the backend's account cannot log in), verified
    # against `ca_file` (a PEM file; None: the system's certificate authorities).
    tls: bool = False
    ca_file: str | None = None
    # The broker's accounts of the backend and of police systems (deploy/mosquitto/). The
    # ACL's patterns give every user name a device's topics (`sd/v1/dev/%u/...`,
    # `owntracks/%u/+`): no device id or OwnTracks user may be one of these, or that account
    # could publish as the device. `username` is always among them.
    service_accounts: tuple[str, ...] = ("schildwacht", "police")

    def reserved_names(self) -> frozenset[str]:
        """User names no device may have: the service accounts and this process's own."""
        return frozenset(self.service_accounts) | ({self.username} if self.username else set())

    @field_validator("password")
    @classmethod
    def _no_placeholder(cls, v: SecretStr | None) -> SecretStr | None:
        return _reject_placeholder(v, "broker password")

    @field_validator("share_group", "alarm_share_group")
    @classmethod
    def _generated_group(cls, v: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if v is None or not v.get_secret_value():
            return None  # unset, or set empty: a plain subscription
        if not SHARE_GROUP.fullmatch(v.get_secret_value()):
            raise ValueError(f"broker.{info.field_name} must be a generated secret: 22 or more "
                             "characters of A-Z, a-z, 0-9, _ and -")
        return v

    @model_validator(mode="after")
    def _reconnect_waits_in_order(self) -> BrokerSettings:
        if self.reconnect_min_s > self.reconnect_max_s:
            raise ValueError("broker.reconnect_min_s must not be longer than reconnect_max_s")
        return self


class ProtocolSettings(BaseModel):
    topic_root: str = "sd/v1"
    max_payload_bytes: int = Field(8 * 1024, ge=256, le=256 * 1024)
    # A device time further than this from server time is a wild clock: server time is used.
    max_clock_skew_s: float = Field(300.0, gt=0)
    # A fix dated further ahead of server time than this (but within `max_clock_skew_s`) drives
    # state as dated this far ahead: one fix of a clock glitch must not become the device's
    # newest time, before which every real fix would be taken for an old one.
    max_fix_ahead_s: float = Field(10.0, ge=0)
    # An alarm whose device time is older than this (but within the skew bound for the past
    # direction below) is raised and flagged "late" (buffered while out of coverage).
    late_after_s: float = Field(60.0, gt=0)
    max_late_s: float = Field(7 * 86_400.0, gt=0)
    # A device whose live messages (a status report with a time, a single fix) showed its
    # clock running behind by as much as an old alarm's, within this time, is in coverage: the
    # alarm's old time is a wrong clock, not a late alarm (`backend.pipeline.steps.wrong_clock`).
    in_coverage_s: float = Field(120.0, gt=0)
    # Contact bans pair the two devices' fixes on a common time base: a device whose latest
    # live message, received at most this long ago, showed its clock running behind by more
    # than `clock_correction_min_s` has its fixes dated that much later there
    # (`backend.pipeline.clock_correction`). Not less than `geofence.partner_max_age_s`.
    clock_correction_max_age_s: float = Field(600.0, gt=0)
    clock_correction_min_s: float = Field(15.0, ge=0)


class PingSettings(BaseModel):
    """Stored fixes (`pings`): victims' and offenders' whereabouts, kept no longer than this
    and in monthly partitions made ahead of time (`backend.devices.ping_retention`). An alert
    keeps its own position; the pings serve the console's trail and `schildwacht tune`."""

    retention_days: int = Field(90, ge=8, le=3_650)
    partitions_ahead_months: int = Field(3, ge=1, le=24)
    maintenance_interval_s: float = Field(3_600.0, ge=10)
    # How long the upkeep waits for a table lock: dropping a partition waits for the inserts
    # on pings to finish and holds up the next ones until it has its lock, so it gives up soon
    # and tries again at the next pass.
    lock_timeout_ms: int = Field(500, ge=10, le=10_000)


class OutboxSettings(BaseModel):
    """The copies made to carry alert documents (`backend.outbox.retention`): police feed
    messages the broker acknowledged, and the bodies of webhook deliveries that ended. They
    hold the same positions as their alerts and are evidence of nothing the alert and the
    delivery log do not keep, so they go after `retention_days`. And how long a device ack or
    command is re-published (`device_deadline_s`)."""

    retention_days: int = Field(30, ge=1, le=3_650)
    retention_interval_s: float = Field(3_600.0, ge=10)
    # A device ack or command the broker has not acknowledged this long after it was written
    # ends `expired` and is no longer re-published (`backend.outbox.expired`). Five minutes
    # rides out a broker restart and the client's reconnect back-off (at most 30 s) many times
    # over; beyond that what it says is out of date (a warning of an offender near, a pursuit
    # interval, an ack of a state the alert may have left) and, sent on reconnecting, it would
    # go out ahead of the next alarm's. Why an ack may end so: docs/protocol.md.
    device_deadline_s: float = Field(300.0, gt=0, le=86_400)


class IngestSettings(BaseModel):
    batch_max: int = Field(500, ge=1, le=10_000)
    # How long a fix or status report may wait for others to share its batch (alarms never
    # wait). Each batch costs two Redis round trips and a transaction whatever its size; taken
    # as they come, batches held 15 fixes at 3,500 fixes/s and those costs were a third of the
    # worker's CPU. An alert raised from a fix or a status report (geofence, tamper) is later by
    # at most this much, against reports 30 s apart.
    batch_linger_s: float = Field(0.05, ge=0, le=1)
    queue_max: int = Field(20_000, ge=100)
    # Fault points for crash tests: the worker kills itself (SIGKILL) after it received an alarm
    # and before it committed it ("before_commit"), or after the alarm's alert was committed and
    # published (the broker acknowledged it) but before its follow-up ran ("before_follow_up").
    # Never set in production.
    fault_point: Literal["", "before_commit", "before_follow_up"] = ""
    outbox_resend_after_s: float = Field(5.0, gt=0)
    # Every worker reloads the device directory (an alarm worker its case snapshots too) within
    # a second after a process changed devices or cases (the change counter, in Redis; after an
    # outage of Redis, once it answers), and in any case this often (changes made outside
    # Schildwacht).
    directory_refresh_s: float = Field(300.0, ge=1)
    # What this worker subscribes to: every uplink channel, only alarms, or all but alarms. An
    # "alarm" worker next to an "other" worker keeps alarms out of the interpreter that
    # evaluates the fixes (see docs/benchmarks.md).
    channels: Literal["all", "alarm", "other"] = "all"
    # Messages whose follow-up (timeline, case log, device commands) is waiting in the
    # follow-up thread; a lane that finds it full waits.
    follow_up_queue_max: int = Field(1_000, ge=1)
    # How long after an alarm's commit its follow-up may wait for the alarm's webhook sends to
    # be on the wire, so that the two do not share the interpreter (0: no wait). A follow-up
    # that is already that late (a backlog) does not wait at all.
    follow_up_wait_s: float = Field(0.05, ge=0, le=1)
    # Rehearse the alarm path (rolled back) when an alarm worker starts, so that the first
    # alarm after a start does not run cold (backend.ingest.rehearsal).
    rehearse: bool = True
    # An alarm-only worker collects garbage between alarms, never during one
    # (backend.ingest.collector); off: Python's automatic collection.
    collect_between_alarms: bool = True


class ProcessSettings(BaseModel):
    """Interpreter settings of every long-running Schildwacht process."""

    # How long a thread may hold the interpreter before another that is ready gets it. Python's
    # default (5 ms) makes an alarm wait behind fix evaluation or a supervision pass in
    # another thread of the same process, once per database round trip.
    switch_interval_s: float = Field(0.0005, ge=0.0001, le=0.1)
    # The CPU niceness the process runs at (unset: what it inherited). What is on the alarm
    # path (the alarm worker, the API that carries the console stream) can go before bulk work
    # (a fix worker at 5) on a shared machine; below the inherited niceness needs the
    # privilege to raise priority (CAP_SYS_NICE).
    nice: int | None = Field(None, ge=-20, le=19)
    # A thread of an ingest worker, or a pass of a background loop, that shows no progress for
    # this long (beyond the loop's interval) is stuck: the service manager's watchdog is no
    # longer told the process is alive (backend.service_notify). Longer than any timeout a step
    # waits on (statements, Redis, the broker, retry back-off).
    stuck_after_s: float = Field(30.0, ge=1)
    # An ingest worker moves what it loaded (directory, snapshots, measures, code) into the
    # collector's permanent generation, at start and after each reload (`gc.freeze`): full
    # collections then skip it. What is frozen is never scanned again, so garbage in cycles
    # frozen with it stays; a process that builds and drops many workers (the tests) turns
    # it off.
    freeze_heap: bool = True


class ApiSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    # Run the background loops (escalation, supervision, custody, pings' retention) in the API
    # process. Switch off where a `schildwacht loops` process runs them, so that a supervision
    # pass over every device never holds up the console stream.
    run_loops: bool = True
    # Bootstrap admin token; the demo generates one when unset.
    admin_token: SecretStr | None = None
    # When set, /metrics answers only a request with "Authorization: Bearer <this>" (as
    # Prometheus sends with `authorization.credentials`); unset, keep /metrics to the
    # monitoring network at the proxy.
    metrics_token: SecretStr | None = None
    # A stream (`/api/v1/stream`) checks its session or token again before a frame when this
    # long has passed since the last check, and at the session's expiry: a console signed out,
    # a session expired, a user disabled or a token revoked gets no frame after that and its
    # stream is closed (4401), also while no event is due.
    stream_recheck_s: float = Field(5.0, gt=0, le=60)

    @field_validator("admin_token", "metrics_token")
    @classmethod
    def _no_placeholder(cls, v: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        return _reject_placeholder(v, (info.field_name or "token").replace("_", " "))


class TokenSettings(BaseModel):
    """Bearer tokens an administrator issues (`POST /api/v1/tokens`: a police system, a
    monitoring client). Every one expires: `lifetime_s` after it is issued, or after the
    lifetime asked for when it is issued, which may not exceed `max_lifetime_s`. A console
    sign-in is a session, not a token: it ends after `console.session_lifetime_s` (12 h). The
    bootstrap `api.admin_token` is set here, not issued: it lasts until it is removed."""

    lifetime_s: int = Field(90 * 86_400, ge=3_600, le=MAX_TOKEN_LIFETIME_S)
    max_lifetime_s: int = Field(365 * 86_400, ge=3_600, le=MAX_TOKEN_LIFETIME_S)

    @model_validator(mode="after")
    def _default_within_maximum(self) -> TokenSettings:
        if self.lifetime_s > self.max_lifetime_s:
            raise ValueError("tokens.lifetime_s must not exceed tokens.max_lifetime_s: the "
                             "default lifetime of a token is one an administrator may ask for")
        return self


class MetricsSettings(BaseModel):
    """Where a process that serves no API (`ingest`, `loops`) serves its Prometheus metrics:
    off without a port; each such process on a machine needs a port of its own. The API serves
    its process's metrics at /metrics."""

    host: str = "127.0.0.1"
    port: int | None = Field(None, ge=1, le=65535)


class RoutingSettings(BaseModel):
    # Police unit used when neither the fix nor the case tells where the victim is.
    fallback_police_unit: str = "RE07"
    # The routing policy (YAML, see backend/routing/policy.yaml); None: the packaged one.
    policy_path: str | None = None


class SupervisionSettings(BaseModel):
    """Escalation, device supervision and custody loops (backend/escalation, backend/supervision,
    backend/cases/custody_loop)."""

    escalation_interval_s: float = Field(1.0, gt=0)
    supervision_interval_s: float = Field(5.0, gt=0)
    # How often custody releases are checked for a tightening to start or end (CustodyLoop).
    custody_interval_s: float = Field(60.0, gt=0)
    silent_after_s: float = Field(90.0, gt=0)
    silent_after_pursuit_s: float = Field(20.0, gt=0)
    battery_low_pct: int = Field(15, ge=0, le=100)
    battery_recover_pct: int = Field(20, ge=0, le=100)
    no_fix_after_s: float = Field(300.0, gt=0)
    no_fix_after_pursuit_s: float = Field(60.0, gt=0)
    # A last contact, fix or status report time further ahead of the supervision pass's clock is
    # not trusted (a clock that ran ahead): the device counts as not heard (backend/supervision).
    clock_tolerance_s: float = Field(60.0, ge=0)
    # Devices last heard within this window and now silent count towards a storm.
    storm_window_s: float = Field(300.0, gt=0)
    storm_threshold: int = Field(10, ge=1)
    # New alerts a supervision pass raises at most (about 26 ms each): the rest, least urgent and
    # most recent last, wait for the next pass, so that a pass stays well within the watchdog's
    # time (backend/periodic.py) even when thousands of cases fall silent at once.
    max_new_alerts_per_pass: int = Field(500, ge=1)
    # Pursuit mode: report interval while an urgent alert of the case is open.
    pursuit_report_interval_s: int = Field(15, ge=1, le=3_600)
    # The follow-up sweep (backend/alerts/follow_up_sweep.py): how often it looks, and how long
    # after its raise an open alert's follow-up (timeline, case log, device commands) may still
    # be on its way from the process that raised it.
    follow_up_sweep_interval_s: float = Field(10.0, gt=0)
    follow_up_grace_s: float = Field(30.0, ge=1)


class PoliceSettings(BaseModel):
    """Webhook hand-off to police systems: delivery policy, HTTP timeouts, drill regions."""

    # Retry policy (see backend/police/retry.py): backoff and the delivery deadline.
    base_delay_s: float = Field(0.5, gt=0)
    max_delay_s: float = Field(10.0, gt=0)
    min_delay_s: float = Field(0.2, gt=0)
    max_retry_after_s: float = Field(30.0, gt=0)
    deadline_s: float = Field(60.0, gt=0)
    # HTTP timeouts of one attempt: connect, each read and write, and the whole attempt (a
    # receiver that trickles its answer is cut off there; it must end within the claim lease).
    connect_timeout_s: float = Field(2.0, gt=0)
    read_timeout_s: float = Field(5.0, gt=0)
    write_timeout_s: float = Field(5.0, gt=0)
    total_timeout_s: float = Field(10.0, gt=0)
    # Delivery worker: idle poll interval (it is also woken right after each commit), rows
    # claimed per round, parallel sends (in all, and to one subscription: a receiver that hangs
    # holds no more threads than that, and never all of them), and how long a claim holds
    # before another worker may take the row over (a crashed worker's rows).
    poll_interval_s: float = Field(1.0, gt=0)
    batch_size: int = Field(50, ge=1, le=1_000)
    concurrency: int = Field(8, ge=1, le=64)
    concurrency_per_subscription: int = Field(2, ge=1, le=64)
    claim_lease_s: float = Field(30.0, gt=0)
    # Priorities whose failed delivery puts "police not reached: phone the control room" on
    # the alert.
    urgent_priorities: list[str] = ["P1", "P2"]
    # VR codes (veiligheidsregio) running an exercise: their alerts of no case are drills (a
    # live case's never are; an exercise's devices are in a case flagged `exercise`).
    exercise_regions: list[str] = []
    # Fernet keys, comma-separated, that seal webhook secrets in the database (the first seals,
    # every one opens: backend/police/sealing.py). Unset: secrets are stored in clear.
    secret_keys: SecretStr | None = None
    cloudevent_source: str = "urn:schildwacht:backend"
    cap_sender: str = "urn:schildwacht:backend"
    # Hosts a webhook may reach over plain HTTP (a receiver on a network of its own); every
    # other webhook URL is https, but for this host's loopback (backend/subscriptions/urls.py).
    plain_http_hosts: list[str] = []

    @model_validator(mode="after")
    def _attempts_end_within_their_claim(self) -> PoliceSettings:
        if self.total_timeout_s >= self.claim_lease_s:
            raise ValueError("police.total_timeout_s must be shorter than police.claim_lease_s: "
                             "another worker would take a delivery over while its attempt runs")
        return self


class LoginSettings(BaseModel):
    """Failed console sign-ins (`backend.auth.throttle`): after `free_failures` from one
    address for one name (`free_failures_per_address` for all names), each failure doubles the
    wait before the next try, up to `max_wait_s`; counts are forgotten `forget_after_s` after
    their last failure.

    A desk whose dispatchers all sign in from one address (behind one NAT) shares that
    address's count: the count per name must stop one account's failures well before they
    fill it, so `free_failures` is lower than `free_failures_per_address` (and the latter
    large enough for the failures a whole desk makes within `forget_after_s`)."""

    free_failures: int = Field(5, ge=1, le=100)
    free_failures_per_address: int = Field(50, ge=1, le=10_000)
    max_wait_s: float = Field(900.0, ge=1, le=86_400)
    forget_after_s: float = Field(3_600.0, ge=60, le=7 * 86_400)

    @model_validator(mode="after")
    def _one_name_cannot_fill_its_address(self) -> LoginSettings:
        if self.free_failures >= self.free_failures_per_address:
            raise ValueError(
                "console.login.free_failures must be lower than free_failures_per_address: "
                "else one name's failures slow down every sign-in from its address (a desk "
                "behind one NAT address) before they slow down that name")
        return self


class ConsoleSettings(BaseModel):
    # Map tiles, e.g. "https://service.pdok.nl/brt/achtergrondkaart/wmts/v2_0/standaard/
    # EPSG:3857/{z}/{x}/{y}.png"; None: vector overlays only (nothing loaded from elsewhere).
    tile_url: str | None = None
    tile_attribution: str = ""
    # Secure cookies need HTTPS; switch off only for plain-HTTP local runs and tests.
    secure_cookies: bool = True
    session_lifetime_s: int = Field(12 * 3_600, ge=300, le=7 * 86_400)
    default_language: Literal["nl", "en"] = "nl"
    # The queue page reloads the open alerts this often besides following the stream: an
    # event the stream lost (Redis away) shows within this long all the same.
    resync_s: float = Field(15.0, ge=1, le=300)
    # ... and this often while the stream says events may not arrive (`stream.delayed`).
    delayed_resync_s: float = Field(5.0, ge=1, le=300)
    # The alert page reads the positions again this often while the alert is open (each read
    # audited, as every read of a position is).
    position_refresh_s: float = Field(10.0, ge=1, le=300)
    # Every time the console shows is in this zone, with its abbreviation (CET/CEST).
    timezone: str = "Europe/Amsterdam"
    # The regions page's figures are over the alerts raised in this many days up to now (the
    # page reads only those: not every alert ever raised).
    region_figures_days: int = Field(90, ge=1, le=3_650)
    login: LoginSettings = LoginSettings()

    @field_validator("tile_url")
    @classmethod
    def _tile_host(cls, value: str | None) -> str | None:
        from backend.console.headers import tile_origin

        if value is not None:
            tile_origin(value)
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from backend.console.clock import zone

        zone(value)
        return value


class GeofenceSettings(BaseModel):
    """Thresholds of the geofence engine (see `geofences.GeofenceConfig` for their meaning)
    and how often a worker checks for changed measures."""

    crs: str = "EPSG:28992"
    timezone: str = "Europe/Amsterdam"
    enter_confirmations: int = Field(2, ge=1)
    enter_dwell_s: float | None = Field(None, ge=0)
    immediate_depth_m: float | None = Field(100.0, ge=0)
    repeat_confirmations: int | None = Field(3, ge=2)
    repeat_window_s: float = Field(600.0, gt=0)
    exit_confirmations: int = Field(1, ge=1)
    exit_margin_m: float = Field(25.0, ge=0)
    default_accuracy_m: float = Field(30.0, ge=0)
    max_possible_accuracy_m: float = Field(250.0, ge=0)
    crossing_min_depth_m: float = Field(15.0, ge=0)
    segment_max_gap_s: float = Field(900.0, ge=0)
    partner_max_age_s: float = Field(120.0, ge=0)
    partner_unknown_hold_s: float = Field(1_800.0, gt=0)
    partner_history_s: float = Field(3_600.0, ge=0)
    partner_history_fixes: int = Field(360, ge=1, le=10_000)
    max_future_s: float = Field(300.0, ge=0)
    # Not less than `protocol.max_fix_ahead_s`: the engine dates a fix as the pipeline did.
    max_ahead_s: float = Field(10.0, ge=0)
    max_area_km2: float = Field(2_000.0, gt=0)
    max_radius_m: float = Field(50_000.0, gt=0)
    max_pre_alert_m: float = Field(10_000.0, ge=0)
    # Workers poll the measure catalogue version this often (changes made through the API of
    # the same process are picked up at once).
    reload_poll_s: float = Field(2.0, gt=0)

    def to_config(self):  # -> geofences.GeofenceConfig (imported here: settings stay light)
        from geofences import GeofenceConfig

        return GeofenceConfig(**self.model_dump(exclude={"reload_poll_s"}))


class Settings(BaseSettings):
    # `null` in the environment turns off a setting that is off when None (e.g.
    # SCHILDWACHT_GEOFENCE__REPEAT_CONFIRMATIONS=null).
    model_config = SettingsConfigDict(
        env_prefix="SCHILDWACHT_", env_nested_delimiter="__", extra="ignore",
        env_parse_none_str="null",
    )

    database: DatabaseSettings = DatabaseSettings()
    redis: RedisSettings = RedisSettings()
    broker: BrokerSettings = BrokerSettings()
    protocol: ProtocolSettings = ProtocolSettings()
    ingest: IngestSettings = IngestSettings()
    pings: PingSettings = PingSettings()
    outbox: OutboxSettings = OutboxSettings()
    process: ProcessSettings = ProcessSettings()
    api: ApiSettings = ApiSettings()
    tokens: TokenSettings = TokenSettings()
    metrics: MetricsSettings = MetricsSettings()
    routing: RoutingSettings = RoutingSettings()
    geofence: GeofenceSettings = GeofenceSettings()
    supervision: SupervisionSettings = SupervisionSettings()
    police: PoliceSettings = PoliceSettings()
    console: ConsoleSettings = ConsoleSettings()

    @model_validator(mode="after")
    def _late_fixes_outlive_nothing(self) -> Settings:
        if self.pings.retention_days * 86_400 <= self.protocol.max_late_s:
            raise ValueError("pings.retention_days must be longer than protocol.max_late_s: a "
                             "late fix would be deleted as soon as it is stored")
        if self.geofence.max_ahead_s < self.protocol.max_fix_ahead_s:
            raise ValueError("geofence.max_ahead_s must not be less than "
                             "protocol.max_fix_ahead_s: the engine would date a fix otherwise "
                             "than the device's stored last fix")
        if self.protocol.clock_correction_max_age_s < self.geofence.partner_max_age_s:
            raise ValueError("protocol.clock_correction_max_age_s must not be less than "
                             "geofence.partner_max_age_s: a partner's fix young enough to be "
                             "paired would lose its clock correction")
        return self
