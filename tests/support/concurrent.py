"""Requests to the API made at the same moment, each from a thread and a client of its own."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient


def together(app: FastAPI, token: str, times: int,
             call: Callable[[TestClient, int], httpx.Response]) -> list[httpx.Response]:
    """`call(client, i)` for i in range(times), all released at once; a server error is an
    answer (500), not an exception."""
    start = threading.Barrier(times)

    def run(i: int) -> httpx.Response:
        client = TestClient(app, raise_server_exceptions=False,
                            headers={"Authorization": f"Bearer {token}"})
        start.wait()
        return call(client, i)

    with ThreadPoolExecutor(times) as pool:
        return list(pool.map(run, range(times)))
