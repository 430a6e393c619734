"""The `schildwacht` command.

    schildwacht demo        everything in one process on embedded defaults, with simulated devices
    schildwacht migrate     apply the database migrations
    schildwacht api         the HTTP API (and the outbox loop for its downlinks)
    schildwacht loops       the escalation, supervision, custody and ping retention loops
                            (with SCHILDWACHT_API__RUN_LOOPS=false)
    schildwacht ingest      one ingest worker
    schildwacht run         API and ingest worker in one process
    schildwacht simulate    drive simulated devices against a broker
    schildwacht tune        alerts per day a proposed measure would raise (recorded or simulated)
    schildwacht user        console accounts: add, disable, enable
    schildwacht token       bearer tokens: list, revoke
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import uuid

from backend import gc_watch, logging_setup, process
from backend.settings import Settings

log = logging.getLogger("schildwacht")

# The long-running commands: their garbage collections are timed (`backend.gc_watch`).
SERVICES = frozenset({"api", "loops", "ingest", "run", "demo"})


class StopSignal:
    """SIGTERM or SIGINT, caught from the moment this is made: a service makes it before it
    starts anything, so a stop asked for while it is starting (before READY=1) ends it cleanly
    once it is up, instead of killing it part-way. `wait` wakes every `poll_s`: Python runs a
    signal's handler on the main thread only, and a wait without a timeout on a main thread
    the signal was not delivered to would never see it."""

    def __init__(self, poll_s: float = 0.5) -> None:
        self._stop = threading.Event()
        self._poll_s = poll_s
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: self._stop.set())

    def wait(self) -> None:
        while not self._stop.wait(self._poll_s):
            pass


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    from backend.db import server_check
    from backend.db.engine import make_engine
    from backend.db.migrate import upgrade

    from backend.db.engine import make_session_factory
    from backend.police.sealing import SecretBox
    from backend.subscriptions.flows import reseal_secrets

    upgrade(settings.database.url)
    log.info("database migrated to head")
    engine = make_engine(settings.database)
    try:
        server_check.check(engine)
        with make_session_factory(engine).begin() as session:
            resealed, clear = reseal_secrets(
                session, SecretBox.from_setting(settings.police.secret_keys))
        if resealed:
            log.info("webhook secrets sealed with the first key count=%d", resealed)
        if clear:
            log.warning("webhook secrets stored in clear count=%d: set "
                        "SCHILDWACHT_POLICE__SECRET_KEYS and migrate again", clear)
    finally:
        engine.dispose()
    return 0


def _serve_api(runtime, settings: Settings, stop_after_s: float | None = None) -> None:
    """Serve the API in this thread until SIGINT/SIGTERM (or `stop_after_s`), then return, so
    that the caller's clean-up runs. uvicorn, once it has shut down on a signal, raises the
    signal again for the handler it found: with none of ours, SIGTERM would kill the process
    there (the webhook sends in flight abandoned until their lease runs out) and Ctrl-C end in
    a traceback."""
    import uvicorn

    from backend.api.app import create_app

    config = uvicorn.Config(
        create_app(runtime), host=settings.api.host, port=settings.api.port,
        log_level="warning", access_log=False, ws="websockets-sansio",
        log_config=None,  # uvicorn's records go to this process's handler (`logging_setup`)
    )
    server = uvicorn.Server(config)
    process.freeze_loaded()
    if stop_after_s is not None:
        timer = threading.Timer(stop_after_s, lambda: setattr(server, "should_exit", True))
        timer.daemon = True
        timer.start()
    StopSignal()  # the handler uvicorn restores and raises the signal to: it only notes it
    server.run()


def cmd_api(settings: Settings, args: argparse.Namespace) -> int:
    from backend.mqtt.client import connect, make_client
    from backend.runtime import Runtime

    runtime = Runtime.build(settings)
    client = make_client(settings.broker, f"schildwacht-api-{uuid.uuid4().hex[:8]}")
    runtime.attach_mqtt(client)
    network = connect(client, settings.broker, service="api")
    runtime.start_background(loops=settings.api.run_loops)
    try:
        _serve_api(runtime, settings)
    finally:
        runtime.close()
        network.stop()
    return 0


def cmd_loops(settings: Settings, args: argparse.Namespace) -> int:
    from backend import service_notify
    from backend.metrics import serve as serve_metrics
    from backend.mqtt.client import connect, make_client
    from backend.runtime import Runtime

    stop = StopSignal()
    runtime = Runtime.build(settings)
    client = make_client(settings.broker, f"schildwacht-loops-{uuid.uuid4().hex[:8]}")
    runtime.attach_mqtt(client)
    network = connect(client, settings.broker, service="loops")
    runtime.start_background(loops=True)
    metrics = serve_metrics(settings.metrics)
    process.freeze_loaded()
    log.info("escalation, supervision, custody and ping retention loops running")
    try:
        with service_notify.supervised(runtime.loop_problems):
            stop.wait()
    finally:
        if metrics is not None:
            metrics.shutdown()
        runtime.close()
        network.stop()
    return 0


def cmd_ingest(settings: Settings, args: argparse.Namespace) -> int:
    from backend.db import server_check
    from backend import service_notify
    from backend.ingest.worker import IngestWorker
    from backend.metrics import serve as serve_metrics
    from backend.runtime import Runtime

    stop = StopSignal()
    if args.channels:
        settings.ingest.channels = args.channels
    runtime = Runtime.build(settings)
    server_check.check(runtime.engine)  # what the worker writes must survive and stay small
    worker = IngestWorker(runtime, client_id=args.client_id)
    worker.start()
    runtime.start_background(loops=False)  # the time-driven loops run in `api` or `loops`
    metrics = serve_metrics(settings.metrics)
    log.info("ingest worker running as %s (channels: %s)", worker.client_id,
             settings.ingest.channels)
    try:
        with service_notify.supervised(worker.problems):
            stop.wait()
    finally:
        if metrics is not None:
            metrics.shutdown()
        worker.stop()
        runtime.close()
    return 0


def cmd_run(settings: Settings, args: argparse.Namespace) -> int:
    from backend.ingest.worker import IngestWorker
    from backend.runtime import Runtime

    runtime = Runtime.build(settings)
    worker = IngestWorker(runtime)
    worker.start()
    runtime.start_background()
    try:
        _serve_api(runtime, settings)
    finally:
        worker.stop()
        runtime.close()
    return 0


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    from backend.demo import run_demo

    return run_demo(settings, devices=args.devices, duration_s=args.duration)


def cmd_user_add(settings: Settings, args: argparse.Namespace) -> int:
    """Create a console user; the password comes from --password, else it is asked for."""
    import getpass

    from backend.auth.errors import AuthError
    from backend.auth.scope import parse_scope
    from backend.auth.users import add_user
    from backend.db.engine import make_engine, make_session_factory

    try:
        password = args.password or getpass.getpass(f"password for {args.username}: ")
    except EOFError:  # no terminal and nothing on stdin
        print("error: no password given: type it at the prompt, pipe it on stdin or give "
              "--password", file=sys.stderr)
        return 2
    engine = make_engine(settings.database)
    try:
        with make_session_factory(engine).begin() as s:
            add_user(s, args.username, password, args.role, parse_scope(args.role, args.scope))
    except AuthError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    print(f"user {args.username} ({args.role}) created")
    return 0


def _in_database(settings: Settings, action) -> int:
    """Run `action(session)` in one transaction; an auth error is printed and changes
    nothing (exit 2)."""
    from backend.auth.errors import AuthError
    from backend.db.engine import make_engine, make_session_factory

    engine = make_engine(settings.database)
    try:
        with make_session_factory(engine).begin() as s:
            message = action(s)
    except AuthError as e:
        print(f"error: {e} (nothing changed)", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    print(message)
    return 0


def cmd_user_disable(settings: Settings, args: argparse.Namespace) -> int:
    """Disable a console user: no sign-in, and every session of hers ends."""
    from backend.auth.users import disable_user

    def disable(s) -> str:
        user, ended = disable_user(s, args.username)
        return (f"user {user.username} disabled since {user.disabled_at.isoformat()}; "
                f"{ended} console session(s) ended")

    return _in_database(settings, disable)


def cmd_user_enable(settings: Settings, args: argparse.Namespace) -> int:
    from backend.auth.users import enable_user

    return _in_database(settings, lambda s: f"user {enable_user(s, args.username).username} "
                                            "may sign in again")


def cmd_token_list(settings: Settings, args: argparse.Namespace) -> int:
    """Every stored token: id, state, expiry, role and name (never the token)."""
    from datetime import UTC, datetime

    from sqlalchemy import select

    from backend.auth.models import ApiToken
    from backend.auth.tokens import state

    def listing(s) -> str:
        now = datetime.now(UTC)
        rows = s.scalars(select(ApiToken).order_by(ApiToken.created_at.desc(), ApiToken.id))
        return "\n".join(
            f"{row.id}  {state(row, now):7}  expires {row.expires_at.isoformat()}  "
            f"{row.role:13}  {row.name}" for row in rows) or "no tokens"

    return _in_database(settings, listing)


def cmd_token_revoke(settings: Settings, args: argparse.Namespace) -> int:
    """Revoke a token: refused from now on in every process."""
    from backend.auth.tokens import revoke

    def revoking(s) -> str:
        row = revoke(s, args.token_id)
        return f"token {row.id} ({row.name}) revoked at {row.revoked_at.isoformat()}"

    return _in_database(settings, revoking)


def cmd_cases_changed(settings: Settings, args: argparse.Namespace) -> int:
    """Tell every process that cases, their contacts or devices changed outside the API (by
    hand, in SQL, by a script): the ingest workers read the cases named (without --case: every
    case and device) again within about a second, instead of at their next full reload
    (`ingest.directory_refresh_s`). A case that does not exist changes nothing."""
    import redis as redis_lib
    from sqlalchemy import select

    from backend.cases.changes import RedisChangeCounter
    from backend.cases.models import Case
    from backend.db.engine import make_engine

    if not settings.redis.url:
        print("no Redis configured (SCHILDWACHT_REDIS__URL): without it one process holds "
              "everything, and it reads a changed case again within "
              f"{settings.ingest.directory_refresh_s:.0f} s or on a restart", file=sys.stderr)
        return 2
    named = sorted(set(args.case or []))
    if named:
        engine = make_engine(settings.database)
        try:
            with engine.connect() as conn:
                found = set(conn.scalars(select(Case.id).where(Case.id.in_(named))))
        finally:
            engine.dispose()
        if missing := [c for c in named if c not in found]:
            print("no such case: " + ", ".join(map(str, missing)) + " (nothing was told)",
                  file=sys.stderr)
            return 2
    timeout_s = max(settings.redis.timeout_s, 2.0)
    client = redis_lib.Redis.from_url(settings.redis.url, socket_timeout=timeout_s,
                                      socket_connect_timeout=timeout_s)
    try:
        RedisChangeCounter.of_prefix(client, settings.redis.key_prefix).bump(named or None)
    except redis_lib.RedisError as exc:
        print(f"Redis did not answer ({type(exc).__name__}): nothing was told", file=sys.stderr)
        return 1
    finally:
        client.close()
    print(f"told every process: {len(named)} case(s) changed" if named
          else "told every process: cases and devices changed (each reads all of them again)")
    return 0


def cmd_simulate(settings: Settings, args: argparse.Namespace) -> int:
    from simulator.runner import main as simulate_main

    return simulate_main(simulate_argv(settings, args.rest))


def simulate_argv(settings: Settings, rest: list[str]) -> list[str]:
    """The simulator's arguments: this deployment's topic root and broker unless the command
    line says otherwise (its own options come after these, and win)."""
    return ["--topic-root", settings.protocol.topic_root, "--host", settings.broker.host,
            "--port", str(settings.broker.port), *rest]


def cmd_tune(settings: Settings, args: argparse.Namespace) -> int:
    """Replay recorded pings of a case (or a simulated track) against a proposed measure."""
    from datetime import datetime
    from pathlib import Path

    from backend.measures import tuning
    from backend.measures.errors import MeasureRejected

    config = settings.geofence.to_config()
    try:
        if args.simulate:
            tracks, offenders, victims = tuning.simulated_tracks(args.simulate, args.seed)
            measures = tuning.load_proposal(
                Path(args.measure), case_id=args.case, offenders=offenders, victims=victims,
                override_devices=True, config=config,
            )
        else:
            if not (args.case and args.start and args.end):
                print("tune: give --case, --from and --to, or --simulate", file=sys.stderr)
                return 2
            from backend.db.engine import make_engine, make_session_factory

            engine = make_engine(settings.database)
            try:
                with make_session_factory(engine)() as session:
                    tracks, offenders, victims = tuning.recorded_tracks(
                        session, uuid.UUID(args.case), datetime.fromisoformat(args.start),
                        datetime.fromisoformat(args.end),
                    )
            finally:
                engine.dispose()
            measures = tuning.load_proposal(
                Path(args.measure), case_id=args.case, offenders=offenders, victims=victims,
                config=config,
            )
    except MeasureRejected as exc:
        for problem in exc.problems:
            print(f"{problem.path}: {problem.message}", file=sys.stderr)
        return 2
    tuning.print_report(tuning.tune(measures, tracks, config))
    return 0


def build_parser() -> argparse.ArgumentParser:
    from backend.auth.models import ROLES

    parser = argparse.ArgumentParser(prog="schildwacht", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--log-level", default="INFO")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run everything on embedded defaults with simulated devices")
    demo.add_argument("--devices", type=int, default=4, help="simulated victim devices")
    demo.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    demo.set_defaults(func=cmd_demo)
    sub.add_parser("migrate", help="apply database migrations").set_defaults(func=cmd_migrate)
    sub.add_parser("api", help="serve the HTTP API").set_defaults(func=cmd_api)
    sub.add_parser(
        "loops", help="run the escalation, supervision, custody and ping retention loops"
    ).set_defaults(func=cmd_loops)
    ingest = sub.add_parser("ingest", help="run one ingest worker")
    ingest.add_argument("--client-id", default=None)
    ingest.add_argument("--channels", choices=["all", "alarm", "other"], default=None,
                        help="subscribe to every uplink channel, only alarms, or all but alarms "
                             "(default: SCHILDWACHT_INGEST__CHANNELS, else all)")
    ingest.set_defaults(func=cmd_ingest)
    sub.add_parser("run", help="API and ingest worker in one process").set_defaults(func=cmd_run)
    user = sub.add_parser("user", help="console accounts").add_subparsers(dest="user_command",
                                                                          required=True)
    user_add = user.add_parser("add", help="create a console user")
    user_add.add_argument("--username", required=True)
    user_add.add_argument("--role", required=True,
                          choices=ROLES)
    user_add.add_argument("--scope", default="",
                          help="comma-separated: VR codes (dispatcher), RE units (police), "
                               "case references (case_director, partner)")
    user_add.add_argument("--password", default=None, help="else asked for on the terminal")
    user_add.set_defaults(func=cmd_user_add)
    user_disable = user.add_parser(
        "disable", help="disable a console user: no sign-in, and her sessions end")
    user_disable.add_argument("username")
    user_disable.set_defaults(func=cmd_user_disable)
    user_enable = user.add_parser("enable", help="let a disabled console user sign in again")
    user_enable.add_argument("username")
    user_enable.set_defaults(func=cmd_user_enable)
    token = sub.add_parser("token", help="bearer tokens").add_subparsers(dest="token_command",
                                                                         required=True)
    token.add_parser("list", help="every stored token (never the token itself)").set_defaults(
        func=cmd_token_list)
    token_revoke = token.add_parser("revoke", help="revoke a token: refused from now on")
    token_revoke.add_argument("token_id", type=uuid.UUID, metavar="ID")
    token_revoke.set_defaults(func=cmd_token_revoke)
    cases = sub.add_parser("cases", help="cases changed outside the API").add_subparsers(
        dest="cases_command", required=True)
    changed = cases.add_parser(
        "changed", help="have every worker read cases changed by hand again now")
    changed.add_argument("--case", action="append", type=uuid.UUID, metavar="CASE_ID",
                         help="a case changed (repeat for more); none: every case and device")
    changed.set_defaults(func=cmd_cases_changed)
    tune = sub.add_parser("tune", help="alerts per day a proposed measure would have raised")
    tune.add_argument("--measure", required=True, help="GeoJSON Feature or FeatureCollection")
    tune.add_argument("--case", default=None, help="case id (its devices and recorded pings)")
    tune.add_argument("--from", dest="start", default=None, help="ISO 8601 start (with offset)")
    tune.add_argument("--to", dest="end", default=None, help="ISO 8601 end (with offset)")
    tune.add_argument("--simulate", default=None, metavar="SCENARIO",
                      help="replay a simulator scenario instead of recorded pings")
    tune.add_argument("--seed", type=int, default=0, help="seed of the simulated scenario")
    tune.set_defaults(func=cmd_tune)
    simulate = sub.add_parser("simulate", help="drive simulated devices (see --help)", add_help=False)
    simulate.add_argument("rest", nargs=argparse.REMAINDER)
    simulate.set_defaults(func=cmd_simulate)
    return parser


def _simulate_at(argv: list[str]) -> int | None:
    """Where `simulate` stands if it is the command given. Everything after it goes to the
    simulator untouched: argparse's REMAINDER drops a remainder that starts with an option
    (`simulate --scenario all`)."""
    skip = False
    for i, token in enumerate(argv):
        if skip or token.startswith("-"):
            skip = token == "--log-level"
            continue
        return i if token == "simulate" else None
    return None


def application_name(args: argparse.Namespace) -> str:
    """How this process's database connections are named: "schildwacht <command>", with an
    ingest worker's channels."""
    channels = getattr(args, "channels", None)
    return " ".join(["schildwacht", args.command, *([channels] if channels else [])])


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    at = _simulate_at(argv)
    args = build_parser().parse_args(argv if at is None else argv[: at + 1])
    if at is not None:
        args.rest = argv[at + 1 :]
    logging_setup.setup(args.log_level)
    try:
        settings = Settings()
    except ValueError as exc:
        print(f"invalid settings: {exc}", file=sys.stderr)
        return 2
    process.apply(settings.process)
    if settings.database.application_name is None:
        settings.database.application_name = application_name(args)
    if args.command in SERVICES:  # a long collection stops every thread: logged, not guessed
        gc_watch.install()
    return args.func(settings, args)


if __name__ == "__main__":
    sys.exit(main())
