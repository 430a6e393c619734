"""The benchmark's desk acknowledges what the console showed, through the API, after its delay."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from loadtests.desk import Desk
from tests.support.waiting import wait_until


class _Api:
    """Answers POST .../acknowledge with 200, or 409 for the alert id "refuse"."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, str | None, float]] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                api.posts.append((self.path, self.headers.get("Authorization"),
                                  time.monotonic()))
                self.send_response(409 if "/refuse/" in self.path else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_the_desk_acknowledges_each_alert_after_its_delay() -> None:
    api = _Api()
    desk = Desk(api.url, "tok", after_s=0.3)
    try:
        seen_at = time.monotonic()
        desk.saw("a-1")
        desk.saw("refuse")
        wait_until(lambda: desk.acknowledged + desk.failed == 2, timeout=5)
    finally:
        desk.close()
        api.close()
    assert [(path, auth) for path, auth, _ in api.posts] == [
        ("/api/v1/alerts/a-1/acknowledge", "Bearer tok"),
        ("/api/v1/alerts/refuse/acknowledge", "Bearer tok"),
    ]
    assert api.posts[0][2] - seen_at >= 0.3
    assert (desk.acknowledged, desk.failed) == (1, 1)
