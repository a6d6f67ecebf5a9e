"""The fail-open client: the breaker, and the resync that runs before the cache serves again."""

from __future__ import annotations

import threading
import time

import pytest

from ragcache import client, keys, scopes
from ragcache.client import CacheUnavailable, breaker

pytestmark = pytest.mark.django_db


def test_no_call_reads_the_cache_while_the_resync_before_it_is_still_running():
    finished_resync: list[float] = []
    served: list[float] = []
    release = threading.Event()
    entered = threading.Event()
    original = client.resync_hook

    def slow_resync(redis) -> None:  # stands for the rewrite of every generation copy
        entered.set()
        release.wait(5)
        finished_resync.append(time.monotonic())

    client.resync_hook = slow_resync
    breaker.needs_resync = True
    try:
        first = threading.Thread(target=lambda: client.run("ret", lambda redis: redis.ping()))
        first.start()
        assert entered.wait(5)
        second = threading.Thread(target=lambda: client.run("ret", lambda redis: served.append(time.monotonic())))
        second.start()
        time.sleep(0.2)
        assert served == []  # it waits for the resync instead of reading stale copies
        release.set()
        first.join(5)
        second.join(5)
    finally:
        client.resync_hook = original
    assert len(finished_resync) == 1 and served and served[0] >= finished_resync[0]
    assert breaker.needs_resync is False


def test_a_failure_during_the_resync_leaves_it_to_be_done_again():
    original = client.resync_hook

    def resync_while_redis_fails_elsewhere(redis) -> None:
        breaker.record_failure("gen", "ConnectionError: another thread's call failed meanwhile")

    client.resync_hook = resync_while_redis_fails_elsewhere
    breaker.needs_resync = True
    try:
        client.run("ret", lambda redis: redis.ping())
    finally:
        client.resync_hook = original
    assert breaker.needs_resync is True  # what failed meanwhile may have missed a bump


def test_a_call_skipped_by_the_open_circuit_asks_for_a_resync():
    breaker.open_until = time.monotonic() + 5
    breaker.needs_resync = False
    with pytest.raises(CacheUnavailable):
        client.run("gen", lambda redis: redis.ping())  # a publish of a bump, skipped
    assert breaker.needs_resync is True


@pytest.mark.django_db(transaction=True)  # the resync reads the collections from another thread
def test_the_resync_itself_talks_to_redis_without_waiting_for_itself():
    from tests.chat.factories import handbook

    collection = handbook()
    collection.refresh_from_db()
    tag = keys.scope_tag([collection.pk])
    scopes.list_scope(client.connection(), tag, [collection.pk])
    scopes.meta_raise(client.connection(), tag, gens={collection.pk: 0})  # behind, as after a lost bump
    breaker.needs_resync = True
    done = threading.Event()
    worker = threading.Thread(target=lambda: (client.run("ret", lambda redis: redis.ping()), done.set()))
    worker.start()
    worker.join(10)
    assert done.is_set(), "the resync waited on its own lock"
    assert breaker.needs_resync is False
    redis = client.connection()
    assert int(redis.hget(keys.meta(tag), str(collection.pk))) == collection.generation
