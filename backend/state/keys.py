"""Every Redis key and channel name of Schildwacht, in one place.

Keys carry the device id in a hash tag ({...}) so that a Redis Cluster keeps one device's keys
on one slot.
"""

from __future__ import annotations


def last_fix(prefix: str, device_id: str) -> str:
    """Hash: lat, lon, acc, tst of the newest accepted fix (no TTL; rebuilt from pings)."""
    return f"{prefix}:dev:{{{device_id}}}:fix"


def last_seen(prefix: str, device_id: str) -> str:
    """String: server time (epoch seconds) the device was last heard from."""
    return f"{prefix}:dev:{{{device_id}}}:seen"


def events_channel(prefix: str) -> str:
    """Pub/sub channel carrying console events (alert raised/updated) to every API instance."""
    return f"{prefix}:events"
