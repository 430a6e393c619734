"""Every Redis key and channel name of Schildwacht, in one place.

The hot state of all devices lives in hashes with the device id as field, so that the ingest
worker reads a whole batch of devices with one HMGET per hash and writes it with one script
(`backend.state.store.WRITE_NEWEST`, which takes all four hashes). On Redis Cluster the keys
of one script must lie in one slot: the four share a hash tag (`STATE_TAG`). Every key starts
with the prefix, so `<prefix>:*` finds them all. A fleet larger than one Redis can hold would
split the hashes into buckets by device id.
"""

from __future__ import annotations

# The hash tag of the hashes the state script writes together: Redis Cluster puts every key
# with the same tag in the same slot.
STATE_TAG = "{state}"


def last_fixes(prefix: str) -> str:
    """Hash: device id -> "tst lat lon acc" of its newest accepted fix (no TTL; rebuilt from
    pings)."""
    return f"{prefix}:{STATE_TAG}:last_fix"


def last_seen(prefix: str) -> str:
    """Hash: device id -> server time (epoch seconds) the device was last heard from."""
    return f"{prefix}:{STATE_TAG}:last_seen"


# A field of the last-seen and last-fix hashes that no device id can be (`DEVICE_ID`): when the
# hash began to be read (epoch seconds), set by the first supervision pass that finds it absent.
# It goes with its hash, so a hash lost (Redis restarted without persistence, flushed, evicted)
# loses it too, and supervision tells a time the store lost from one it never had
# (`RedisState.read_times`).
BEGUN = "#begun"


def zone_states(prefix: str) -> str:
    """Hash: device id -> JSON of its geofence states that are not idle (`encode_zones`), kept
    as they change so that every fix worker, restarted or one of several, goes on from them
    (`ZoneStep.begin_batch`)."""
    return f"{prefix}:{STATE_TAG}:zone_states"


def clock_readings(prefix: str) -> str:
    """Hash: device id -> "received_at behind" of its newest message that showed its clock
    (`ClockReading`): how the stale-alarm check tells a wrong clock from a late alarm, and
    how far a contact ban corrects the device's fix times (`backend.pipeline.clock_correction`)."""
    return f"{prefix}:{STATE_TAG}:clock"


def untagged(prefix: str) -> dict[str, str]:
    """The names the three state hashes had before they shared a hash tag -> their names now:
    a store written by an earlier version is carried over once (`RedisState.carry_over`)."""
    return {f"{prefix}:{name}": f"{prefix}:{STATE_TAG}:{name}"
            for name in ("last_fix", "last_seen", "zone_states")}


def case_changes(prefix: str) -> str:
    """Counter: raised by every process after it changed cases, contacts or devices. Its
    log of raises (`case_changes_log`) is written by the same script: one cluster slot."""
    return f"{prefix}:{{case_changes}}"


def case_changes_log(prefix: str) -> str:
    """Sorted set: the last raises of `case_changes`, each with the cases it named."""
    return f"{case_changes(prefix)}:log"


def login_failures(prefix: str, kind: str, digest: str) -> str:
    """Hash (failures, last_at) counting failed console sign-ins of one address ("address")
    or one address and name ("name"), by a digest of them (an IPv6 address by its /64);
    expires (`backend.auth.throttle`)."""
    return f"{prefix}:login_failures:{kind}:{digest}"


def events_channel(prefix: str) -> str:
    """Pub/sub channel carrying console events (alert raised/updated) to every API instance."""
    return f"{prefix}:events"
