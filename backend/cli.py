"""The `schildwacht` command.

    schildwacht demo        everything in one process on embedded defaults, with simulated devices
    schildwacht migrate     apply the database migrations
    schildwacht api         the HTTP API (and the outbox loop for its downlinks)
    schildwacht ingest      one ingest worker
    schildwacht run         API and ingest worker in one process
    schildwacht simulate    drive simulated devices against a broker
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import uuid

from backend import logging_setup
from backend.settings import Settings

log = logging.getLogger("schildwacht")


def _wait_for_signal() -> None:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    from backend.db.migrate import upgrade

    upgrade(settings.database.url)
    log.info("database migrated to head")
    return 0


def _serve_api(runtime, settings: Settings, stop_after_s: float | None = None) -> None:
    """Serve the API in this thread until SIGINT/SIGTERM (or `stop_after_s`)."""
    import uvicorn

    from backend.api.app import create_app

    config = uvicorn.Config(
        create_app(runtime), host=settings.api.host, port=settings.api.port,
        log_level="warning", access_log=False, ws="websockets-sansio",
    )
    server = uvicorn.Server(config)
    if stop_after_s is not None:
        timer = threading.Timer(stop_after_s, lambda: setattr(server, "should_exit", True))
        timer.daemon = True
        timer.start()
    server.run()


def cmd_api(settings: Settings, args: argparse.Namespace) -> int:
    from backend.mqtt.client import connect, make_client
    from backend.runtime import Runtime

    runtime = Runtime.build(settings)
    client = make_client(settings.broker, f"schildwacht-api-{uuid.uuid4().hex[:8]}")
    runtime.attach_mqtt(client)
    connect(client, settings.broker)
    runtime.dispatcher.start()
    runtime.deliveries.start()  # type: ignore[union-attr]  # webhooks to police systems
    try:
        _serve_api(runtime, settings)
    finally:
        runtime.dispatcher.stop()
        client.disconnect()
        client.loop_stop()
        runtime.close()
    return 0


def cmd_ingest(settings: Settings, args: argparse.Namespace) -> int:
    from backend.ingest.worker import IngestWorker
    from backend.runtime import Runtime

    runtime = Runtime.build(settings)
    worker = IngestWorker(runtime, client_id=args.client_id)
    worker.start()
    runtime.dispatcher.start()
    runtime.deliveries.start()  # type: ignore[union-attr]  # webhooks to police systems
    log.info("ingest worker running as %s", worker.client_id)
    try:
        _wait_for_signal()
    finally:
        worker.stop()
        runtime.dispatcher.stop()
        runtime.close()
    return 0


def cmd_run(settings: Settings, args: argparse.Namespace) -> int:
    from backend.ingest.worker import IngestWorker
    from backend.runtime import Runtime

    runtime = Runtime.build(settings)
    worker = IngestWorker(runtime)
    worker.start()
    runtime.dispatcher.start()
    runtime.deliveries.start()  # type: ignore[union-attr]  # webhooks to police systems
    try:
        _serve_api(runtime, settings)
    finally:
        worker.stop()
        runtime.dispatcher.stop()
        runtime.close()
    return 0


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    from backend.demo import run_demo

    return run_demo(settings, devices=args.devices, duration_s=args.duration)


def cmd_simulate(settings: Settings, args: argparse.Namespace) -> int:
    from simulator.runner import main as simulate_main

    return simulate_main(args.rest)


def build_parser() -> argparse.ArgumentParser:
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
    ingest = sub.add_parser("ingest", help="run one ingest worker")
    ingest.add_argument("--client-id", default=None)
    ingest.set_defaults(func=cmd_ingest)
    sub.add_parser("run", help="API and ingest worker in one process").set_defaults(func=cmd_run)
    simulate = sub.add_parser("simulate", help="drive simulated devices (see --help)", add_help=False)
    simulate.add_argument("rest", nargs=argparse.REMAINDER)
    simulate.set_defaults(func=cmd_simulate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging_setup.setup(args.log_level)
    try:
        settings = Settings()
    except ValueError as exc:
        print(f"invalid settings: {exc}", file=sys.stderr)
        return 2
    return args.func(settings, args)


if __name__ == "__main__":
    sys.exit(main())
