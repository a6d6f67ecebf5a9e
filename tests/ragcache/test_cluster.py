"""The key schema on a Redis Cluster: every key one ask touches lies in its scope's slot, so
the lookup script may read them in one call; different scopes spread over the slots. Under
TEST_REDIS_CLUSTER=1 the whole cache suite runs on a three-primary cluster as well."""

from __future__ import annotations

import re

import pytest
from redis.cluster import RedisCluster
from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

from ragcache import census, keys
from ragcache.browse import keys_page
from tests.chat.factories import handbook
from tests.ragcache.helpers import app_keys, ask, outcomes, redis, round_trips
from tests.ragcache.helpers import servers as servers_of_the_cache

pytestmark = pytest.mark.django_db

TEA = "How hot should the water be for green tea?"
TAG = re.compile(rb"\{[0-9a-f]{12}\}")
# Keys of the whole app, not of a scope: each is read or written alone.
GLOBAL = {keys.scopes(), keys.switches(), keys.catalog(), keys.census(), keys.workers(), keys.warming()}


def test_every_key_an_ask_touches_lies_in_its_scopes_slot(settings):
    settings.RAGCACHE = {**settings.RAGCACHE, "WARMING": True}  # the popular questions too
    collection = handbook()
    other = handbook(name="Second handbook")
    for scope in ([collection.pk], [collection.pk, other.pk]):
        for question in (TEA, "How do I fix a flat tyre?", "What temperature should green tea water be?"):
            ask(question, scope)
    found = [key for key in app_keys() if key.decode() not in GLOBAL]
    tags = {TAG.search(key).group().decode() for key in found if TAG.search(key)}
    asked = {keys.scope_tag([collection.pk]), keys.scope_tag([collection.pk, other.pk])}
    assert asked <= tags <= asked | {keys.scope_tag(())}  # and the statistics of what had no scope
    kinds = set()
    for key in found:
        tag = TAG.search(key)
        assert tag is not None, f"{key!r} belongs to no scope"
        assert key_slot(key) == key_slot(keys.meta(tag.group().decode()).encode()), key
        kinds.add(keys.kind(key.decode()))
    assert {"gen", "emb", "ret", "ans", "sem", "doc", "stats", "popular"} <= kinds


def test_scopes_spread_over_the_slots():
    thirds = [0, 0, 0]  # three primaries, a third of the slots each
    for collection_id in range(300):
        thirds[key_slot(keys.meta(keys.scope_tag([collection_id])).encode()) * 3 // REDIS_CLUSTER_HASH_SLOTS] += 1
    assert min(thirds) > 60, thirds  # about 100 each


def test_a_fully_cached_answer_is_one_call_to_one_server():
    collection = handbook()
    ask(TEA, [collection.pk])
    with round_trips() as commands:
        result = ask(TEA, [collection.pk])
    assert outcomes(result) == {"ret": "hit", "ans": "hit"} and commands == ["EVALSHA"]
    if isinstance(redis(), RedisCluster):  # and the suite's cache is a cluster of several servers
        assert len(redis().get_primaries()) == 3


def test_a_complete_miss_asks_no_server_for_the_keys_of_its_scripts():
    """redis-py's cluster pipeline would send COMMAND GETKEYS for each EVAL it is not told
    the node of: a round trip each."""
    collection = handbook()
    with round_trips() as commands:
        assert outcomes(ask(TEA, [collection.pk]))["ans"] == "miss"
    assert "EVAL" in commands and "COMMAND" not in commands


def test_the_panel_lists_counts_and_measures_the_keys_of_every_server():
    written = {f"rc:ans:{{{n:012x}}}:g:1:q" for n in range(300)}  # 300 scopes: every server holds some
    for key in written:
        redis().set(key, "a2 c 1.0 0.0 0.0\n{}", ex=600)
    listed, cursor, pages = [], "0", 0
    while True:
        page = keys_page(cursor=cursor, kind="ans", rows=40)
        listed += [row.key for row in page.rows]
        cursor, pages = page.cursor, pages + 1
        if cursor == "0":
            break
    assert sorted(listed) == sorted(written) and pages > 3  # pages, each server in turn, each key once
    assert census.take(redis())["kinds"]["ans"]["keys"] == 300
    servers = servers_of_the_cache()
    memory = census.server_info(redis())["used_memory"]
    assert memory >= sum(int(server.info("memory")["used_memory"]) for server in servers) * 0.9  # all of them
    assert len(servers) == (3 if isinstance(redis(), RedisCluster) else 1)
