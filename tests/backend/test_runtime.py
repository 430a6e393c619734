"""The runtime's wiring: a change made while Redis was away is counted once it answers, in a
process that does not watch the change counter too (the API's; real PostgreSQL and Redis)."""

from __future__ import annotations

import uuid

import pytest
import redis

from backend.runtime import Runtime
from backend.state import keys
from tests.backend.conftest import make_settings
from tests.conftest import MQTT_PORT, REDIS_URL

pytestmark = pytest.mark.services


def test_a_change_made_while_redis_was_away_is_counted_once_it_answers(pg_url) -> None:
    suffix = uuid.uuid4().hex[:8]
    settings = make_settings("services", db_url=pg_url, port=MQTT_PORT, root=f"sdrt/{suffix}/v1",
                             redis_prefix=f"swtest{suffix}", client_id=f"rt-{suffix}")
    # The breaker opened and closed by hand below; the probe asks too late to interfere.
    settings = settings.model_copy(update={"redis": settings.redis.model_copy(
        update={"retry_after_s": 3600.0})})
    runtime = Runtime.build(settings)
    store = redis.Redis.from_url(REDIS_URL)
    counter = keys.case_changes(settings.redis.key_prefix)
    try:
        assert runtime.redis is not None
        runtime.redis.breaker.trip(redis.ConnectionError("away"))  # Redis away
        runtime.flow.forget_caches([uuid.uuid4()])  # what the API does after it changed a case
        assert store.get(counter) is None  # not counted: the others cannot know yet
        runtime.redis.breaker.close()  # the probe found Redis answering
        assert int(store.get(counter) or 0) > 0
    finally:
        runtime.close()
        store.delete(counter, keys.case_changes_log(settings.redis.key_prefix))
        store.close()
