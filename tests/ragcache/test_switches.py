"""Run-time switches: defaults from settings, overrides in Redis, applied per ask."""

from __future__ import annotations

import pytest

from ragcache import keys, switches
from ragcache.layers import CacheRequest
from tests.chat.factories import handbook
from tests.ragcache.helpers import ask, outcomes, overrides, redis, round_trips

pytestmark = pytest.mark.django_db

TEA = "How hot should the water be for green tea?"


def test_an_override_equal_to_the_default_is_no_override():
    switches.switches_set(layers={"emb": True, "ret": True, "ans": False, "sem": True}, sem_threshold=0.7,
                          checks={"words": True, "context": False})  # fmt: skip
    assert overrides() == {b"ans": b"0"}
    switches.switches_set(layers={"emb": True, "ret": True, "ans": True, "sem": False}, sem_threshold=0.85,
                          checks={"words": False, "context": True})  # fmt: skip
    assert overrides() == {
        b"sem": b"0",
        b"sem_threshold": b"0.85",
        b"sem_check:words": b"0",
        b"sem_check:context": b"1",
    }
    assert switches.current()["sem_check:words"] == {"on": False, "overridden": True}
    assert redis().ttl(keys.switches()) == -1  # configuration: never evicted
    switches.switches_reset()
    assert overrides() == {} and switches.current()["ans"] == {"on": True, "overridden": False}


def test_a_fully_cached_answer_is_still_one_round_trip_with_overrides_in_force():
    collection = handbook()
    switches.switches_set(layers={"emb": False, "ret": True, "ans": True, "sem": True}, sem_threshold=0.95)
    ask(TEA, [collection.pk])
    with round_trips() as commands:
        result = ask(TEA, [collection.pk])
    assert outcomes(result) == {"ret": "hit", "ans": "hit"} and commands == ["EVALSHA"]


def test_an_override_written_by_another_process_is_obeyed_by_the_next_ask():
    collection = handbook()
    ask(TEA, [collection.pk])
    switches.switches_set(layers={"ans": False}, sem_threshold=None)  # as the panel in another process sets it
    switches.observe({})  # ... which this process has not seen: only the scope's copy in Redis tells
    assert outcomes(ask(TEA, [collection.pk]))["ans"] == "bypass"
    switches.switches_reset()
    switches.observe({"ans": "0"})
    assert outcomes(ask(TEA, [collection.pk]))["ans"] == "hit"


def test_an_ask_keeps_the_switches_its_lookup_saw_whatever_other_asks_see_meanwhile():
    collection = handbook()
    cache = CacheRequest()
    found = cache.lookup(
        collection_ids=[collection.pk], embed_model="m", mode="hybrid-c20", k=5, question="q",
        generator="g", prompt_version="1", answer_cacheable=True,
    )  # fmt: skip
    assert found.scope is not None
    switches.observe({"ans": "0", "emb": "0", "sem_threshold": "0.5"})  # another ask's lookup, in another thread
    assert switches.enabled("ans") is False  # the process's copy moved ...
    with cache.answer_claim(keys.ans(found.tag, "g", "1", "q"), context="c", cacheable=True, counted=True) as cached:
        assert cached is None
    assert cache.trace.get("ans", {}).get("outcome") != "bypass"  # ... this ask did not
    assert cache.enabled("emb") is True and cache.threshold() == 0.7


def test_a_switch_set_after_the_hash_was_lost_still_reaches_every_scope():
    collection = handbook()
    ask(TEA, [collection.pk])
    switches.switches_set(layers={"ans": False}, sem_threshold=None)
    redis().delete(keys.switches())  # lost (a restore from an older backup, an operator's DEL)
    switches.switches_set(layers={"ans": True, "ret": False}, sem_threshold=None)
    switches.observe({})
    assert outcomes(ask(TEA, [collection.pk]))["ret"] == "bypass"  # the second change, not the first
