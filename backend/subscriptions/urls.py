"""Which webhook URLs a subscription may have. Pure.

A webhook carries alerts with the victim's position: it goes over HTTPS. Plain HTTP only to
this host's loopback (a relay or receiver on the same machine) or to a host the operator names
in `police.plain_http_hosts` (a receiver on a network of its own).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection
from urllib.parse import urlsplit


def plain_http_refusal(url: str, allowed_hosts: Collection[str] = ()) -> str | None:
    """Why `url` may not be a webhook URL, or None when it may."""
    parts = urlsplit(url)
    if parts.scheme == "https":
        return None
    host = (parts.hostname or "").lower()
    if parts.scheme == "http" and (_loopback(host) or host in {h.lower() for h in allowed_hosts}):
        return None
    return (f"webhook URLs use https: alerts carry victims' positions (plain http only to "
            f"loopback or a host in police.plain_http_hosts; this one: {host or 'none'})")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
