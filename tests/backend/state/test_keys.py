"""Redis key names: the hashes one script writes together lie in one Redis Cluster slot, and
every key of a prefix is found by `<prefix>:*`."""

from __future__ import annotations

from fnmatch import fnmatchcase

import pytest
from redis.crc import key_slot

from backend.state import keys

SCRIPT_KEYS = (keys.last_fixes, keys.last_seen, keys.zone_states)  # `WRITE_NEWEST`'s KEYS
CHANGE_KEYS = (keys.case_changes, keys.case_changes_log)  # `changes._BUMP`'s KEYS
ALL_KEYS = (*SCRIPT_KEYS, *CHANGE_KEYS, keys.events_channel,
            lambda prefix: keys.login_failures(prefix, "name", "0" * 32))


@pytest.mark.parametrize("script_keys", [SCRIPT_KEYS, CHANGE_KEYS])
def test_the_keys_of_one_script_share_one_cluster_slot(script_keys) -> None:
    for prefix in ("sw", "sw-bench-1a2b", "tenant:7"):
        slots = {key_slot(k(prefix).encode()) for k in script_keys}
        assert len(slots) == 1, prefix  # else a cluster refuses the script (CROSSSLOT)


def test_every_key_of_a_prefix_is_found_by_its_pattern_and_no_other() -> None:
    names = [k("sw") for k in ALL_KEYS]
    assert len(set(names)) == len(names)
    assert all(fnmatchcase(n, "sw:*") for n in names)
    assert not any(fnmatchcase(k("sw2"), "sw:*") for k in ALL_KEYS)
