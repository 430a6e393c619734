from __future__ import annotations

import httpx

from loadtests.webhook import WebhookReceiver, find_message_id


def test_message_id_found_in_plain_and_enveloped_bodies():
    assert find_message_id({"message_id": "a-1"}) == "a-1"
    assert find_message_id({"specversion": "1.0", "data": {"alert": {"message_id": "b"}}}) == "b"
    assert find_message_id([{"x": 1}, {"message_id": "c"}]) == "c"
    assert find_message_id({"message_id": None, "type": "panic"}) is None


def test_receiver_reports_each_delivery():
    seen = []
    receiver = WebhookReceiver(lambda mid, at: seen.append(mid))
    try:
        r = httpx.post(receiver.url, json={"data": {"message_id": "m-9"}}, timeout=5)
        assert r.status_code == 204
    finally:
        receiver.close()
    assert seen == ["m-9"] and receiver.received == 1
