"""Logging for every Schildwacht process: ids and codes only, never coordinates or secrets
(each call site keeps to that; this module only sets levels and the format)."""

from __future__ import annotations

import logging

NOISY = ("alembic", "amqtt", "transitions", "uvicorn.access", "httpx", "httpcore", "hpack",
         "websockets", "urllib3")


def setup(level: str = "INFO") -> None:
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s", force=True
    )
    for name in NOISY:
        logging.getLogger(name).setLevel(logging.WARNING)
