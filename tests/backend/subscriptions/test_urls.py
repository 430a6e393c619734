"""Which webhook URLs a subscription may have (pure)."""

from __future__ import annotations

import pytest

from backend.subscriptions.urls import plain_http_refusal


@pytest.mark.parametrize("url", [
    "https://politie.example/hooks", "https://10.0.0.8:8443/h", "http://127.0.0.1:8080/h",
    "http://127.8.9.1/h", "http://[::1]:9000/h", "http://localhost/h", "http://LOCALHOST/h",
])
def test_https_and_loopback_are_allowed(url):
    assert plain_http_refusal(url) is None


@pytest.mark.parametrize("url", [
    "http://politie.example/hooks", "http://10.0.0.8/h", "http://[fe80::1]/h",
    "http://localhost.politie.example/h", "ftp://127.0.0.1/h",
])
def test_plain_http_elsewhere_is_refused_with_the_reason(url):
    why = plain_http_refusal(url)
    assert why is not None and "https" in why


def test_the_operator_may_name_hosts_for_plain_http():
    assert plain_http_refusal("http://ontvanger.intern/h", ["Ontvanger.intern"]) is None
    assert plain_http_refusal("http://andere.intern/h", ["ontvanger.intern"]) is not None
