from __future__ import annotations

import time

import numpy as np
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from chat.generators.extractive import ExtractiveGenerator
from ragcache import keys, switches, values
from ragcache.stats import hit_ratios, totals, with_ratios
from tests.chat.factories import handbook
from tests.ragcache.helpers import app_keys, ask, outcomes, redis, round_trips

pytestmark = pytest.mark.django_db

TEA = "How hot should the water be for green tea?"


def test_a_miss_then_a_hit_for_each_layer(settings):
    collection = handbook()
    first = ask(TEA, [collection.pk])
    assert outcomes(first) == {"ret": "miss", "emb": "miss", "sem": "miss", "ans": "miss"}
    second = ask(TEA, [collection.pk])
    assert outcomes(second) == {"ret": "hit", "ans": "hit"}  # the embedding was not needed
    assert second.text == first.text and second.citations == first.citations
    assert second.trace["from_cache"] is True and first.trace["from_cache"] is False

    settings.RETRIEVAL_TOP_K = 4  # another retrieval, the same question: its embedding is cached
    third = ask(TEA, [collection.pk])
    assert outcomes(third)["emb"] == "hit" and outcomes(third)["ret"] == "miss"


def test_the_question_is_matched_after_normalizing_case_and_spaces():
    collection = handbook()
    ask(TEA, [collection.pk])
    assert outcomes(ask("  how HOT should the water be   for green tea? ", [collection.pk]))["ans"] == "hit"


def test_a_fully_cached_answer_takes_one_redis_round_trip_and_no_query():
    collection = handbook()
    ask(TEA, [collection.pk])
    with round_trips() as commands, CaptureQueriesContext(connection) as queries:
        result = ask(TEA, [collection.pk])
    assert outcomes(result)["ans"] == "hit"
    assert len(queries) == 0
    assert commands == ["EVALSHA"]  # generations, ret, ans and statistics


@pytest.mark.parametrize("change", ["k", "embed model", "prompt version", "scope"])
def test_keys_differ_when_what_decides_the_entry_differs(change, settings):
    collection = handbook()
    other = handbook("Other")
    ask(TEA, [collection.pk])
    scope, generator = [collection.pk], None
    if change == "k":
        settings.RETRIEVAL_TOP_K = 3
    elif change == "embed model":
        settings.ONNX_EMBEDDING_MODEL = "all-MiniLM-L6-v2-renamed"
        from documents.embedding import get_embedder

        get_embedder.cache_clear()
    elif change == "prompt version":
        generator = ExtractiveGenerator()
        generator.prompt_version += "-changed"
    else:
        scope = [collection.pk, other.pk]
    try:
        result = ask(TEA, scope, generator=generator)
    finally:
        from documents.embedding import get_embedder

        get_embedder.cache_clear()
    expected_miss = {"k": "ret", "embed model": "ret", "prompt version": "ans", "scope": "ret"}[change]
    assert outcomes(result)[expected_miss] == "miss"
    if change == "embed model":
        assert outcomes(result)["emb"] == "miss"


def test_key_builders_keep_each_part_apart():
    tag = keys.scope_tag([1])
    assert keys.emb(tag, "m1", "q") != keys.emb(tag, "m2", "q") != keys.emb(keys.scope_tag([2]), "m1", "q")
    assert keys.ret(tag, "m", "hybrid", 5, "q") != keys.ret(tag, "m", "hybrid", 4, "q")
    assert keys.ret(tag, "m", "hybrid", 5, "q") != keys.ret(tag, "m", "dense", 5, "q")
    assert keys.ans(tag, "g", "1", "q") != keys.ans(tag, "g", "2", "q")
    assert keys.scope_digest({1: 2, 3: 4}) == keys.scope_digest({3: 4, 1: 2}) != keys.scope_digest({1: 3, 3: 4})
    assert keys.scope_tag([3, 1, 1]) == keys.scope_tag([1, 3]) != keys.scope_tag([1, 2])


def test_every_key_of_the_app_has_a_ttl_and_the_statistics_match_the_asks():
    collection = handbook()
    for question in [TEA, TEA, "How do I fix a flat tyre?", TEA, "How do I fix a flat tyre?"]:
        ask(question, [collection.pk])
    found = app_keys()
    assert any(k.startswith(b"rc:ans:") for k in found) and any(k.startswith(b"rc:stats:") for k in found)
    without_ttl = [key for key in found if redis().ttl(key) < 0]
    assert without_ttl == sorted([keys.scopes().encode(), keys.switches().encode()])  # the list of scopes, settings
    day = totals(1440)
    # Two cold questions, three repeats of them.
    assert (day["ret"]["miss"], day["ret"]["hit"]) == (2, 3)
    assert (day["ans"]["miss"], day["ans"]["hit"]) == (2, 3)
    assert (day["emb"]["miss"], day["emb"]["hit"]) == (2, 0)
    assert day["ans"]["saved_ms"] > 0 and day["ret"]["saved_ms"] > 0
    ratios = hit_ratios()
    assert set(ratios) == {"5m", "1h", "1d"}
    assert ratios["5m"]["ans"]["ratio"] == pytest.approx(3 / 5) == ratios["1d"]["ans"]["ratio"]
    assert ratios["5m"]["sem"]["ratio"] == 0.0  # two cold questions, with no earlier similar one
    assert with_ratios({"sem": {"hit": 0, "miss": 0}})["sem"]["ratio"] is None  # nothing looked up: none, not zero


def test_ttls_carry_jitter():
    collection = handbook()
    for question in ["Tea?", "Bikes?", "Taxes?", "Stars?", "Errors?", "Tyres?"]:
        ask(question, [collection.pk])
    ttls = {redis().ttl(key) for key in app_keys() if key.startswith(b"rc:ans:")}
    assert len(ttls) > 1
    assert all(0.9 * 7 * 86400 - 5 <= ttl <= 1.1 * 7 * 86400 for ttl in ttls)


def test_a_missing_generation_copy_is_read_back_from_the_database():
    collection = handbook()
    ask(TEA, [collection.pk])
    redis().delete(keys.meta(keys.scope_tag([collection.pk])))
    result = ask(TEA, [collection.pk])
    assert outcomes(result)["ans"] == "hit"
    collection.refresh_from_db()
    assert int(redis().hget(keys.meta(keys.scope_tag([collection.pk])), str(collection.pk))) == collection.generation


def test_an_answer_stored_with_null_token_counts_still_replays():
    collection = handbook()
    ask(TEA, [collection.pk])
    answer_key = next(redis().scan_iter(match="rc:ans:*"))
    value = values.decode(redis().get(answer_key), values.ANSWER)
    value.update(prompt_tokens=None, completion_tokens=None, cost_usd=None, ms=None)
    context = redis().get(answer_key).split(b" ")[1].decode()  # the header: a2 {context} ...
    redis().set(answer_key, values.encode_answer(value, context=context), keepttl=True)
    assert outcomes(ask(TEA, [collection.pk]))["ans"] == "hit"
    assert all(redis().ttl(key) > 0 for key in redis().scan_iter(match="rc:stats:*"))


def test_bumps_do_not_extend_the_life_of_the_generation_copies(django_capture_on_commit_callbacks):
    collection = handbook()
    ask(TEA, [collection.pk])
    copy = keys.meta(keys.scope_tag([collection.pk]))
    first_ttl = redis().pttl(copy)
    time.sleep(0.3)
    with django_capture_on_commit_callbacks(execute=True):
        collection.documents.get(title="tea").save()
    assert 0 < redis().pttl(copy) <= first_ttl - 250


@pytest.mark.parametrize("layer", ["ret", "ans"])
def test_a_value_of_another_format_is_a_miss_deleted_and_counted_never_an_outage(layer, settings):
    from ragcache.client import breaker

    # The exact layers alone: with its retrieval gone, the same question would be a sem hit.
    settings.RAGCACHE = {**settings.RAGCACHE, "ENABLED": {**settings.RAGCACHE["ENABLED"], "sem": False}}
    collection = handbook()
    expected = ask(TEA, [collection.pk]).text
    key = next(redis().scan_iter(match=f"rc:{layer}:*"))
    redis().set(key, '{"an": "older format"}', keepttl=True)
    for _ in range(3):  # three asks used to open the circuit for every question
        result = ask(TEA, [collection.pk])
        assert result.text == expected and outcomes(result)[layer] in {"miss", "hit"}
    assert breaker.failures == 0 and not breaker.is_open and not breaker.needs_resync
    assert totals(5)[layer]["corrupt"] == 1  # deleted the first time, rewritten by that ask
    assert outcomes(ask(TEA, [collection.pk]))["ans"] == "hit"


def test_a_document_index_lives_as_long_as_its_longest_entry_and_sheds_gone_ones():
    collection = handbook()
    tea = collection.documents.get(title="tea")
    tag = keys.scope_tag([collection.pk])
    index = keys.document_index(tag, tea.pk)
    gone = [f"rc:ans:{tag}:gone:{n}" for n in range(40)]  # entries that expired or were flushed
    redis().sadd(index, *gone)
    for wording in [TEA, TEA + "?", "  " + TEA, "Green tea: how hot should the water be?"]:
        ask(wording, [collection.pk])
    members = {m.decode() for m in redis().smembers(index)}
    assert all(redis().exists(m) for m in members - set(gone))
    assert len(members & set(gone)) < 40  # shed as new entries arrive
    longest_entry = max(redis().ttl(m) for m in members - set(gone))
    assert longest_entry <= redis().ttl(index) <= longest_entry + 1  # not the embeddings' 30 days


@pytest.mark.parametrize(
    "damaged",
    [b"garbage", b"\x00" * 16, np.full(384, np.nan, dtype=np.float32).tobytes()],
    ids=["not float32", "wrong size", "not finite"],
)
def test_a_damaged_embedding_is_a_miss_never_an_error(damaged):
    collection = handbook()
    expected = ask(TEA, [collection.pk]).text
    for pattern in ("rc:ret:*", "rc:ans:*"):
        redis().delete(*redis().scan_iter(match=pattern))
    [emb_key] = redis().scan_iter(match="rc:emb:*")
    redis().set(emb_key, damaged, keepttl=True)
    result = ask(TEA, [collection.pk])
    assert result.text == expected and outcomes(result)["emb"] == "miss"
    assert len(redis().get(emb_key)) == 384 * 4  # rewritten


def test_a_full_hit_neither_reads_nor_locks_the_embedding():
    collection = handbook()
    ask(TEA, [collection.pk])
    redis().delete(*redis().scan_iter(match="rc:emb:*"))  # evicted; the answer is still there
    with round_trips() as commands:
        result = ask(TEA, [collection.pk])
    assert result.trace["from_cache"] is True and commands == ["EVALSHA"]
    assert list(redis().scan_iter(match="rc:lock:*")) == []


def test_an_index_is_pruned_by_asks_that_store_no_answer():
    switches.switches_set(layers={"ans": False}, sem_threshold=None)  # retrievals only
    collection = handbook()
    tag = keys.scope_tag([collection.pk])
    index = keys.document_index(tag, collection.documents.get(title="tea").pk)
    gone = [f"rc:ret:{tag}:gone:{n}" for n in range(20)]
    redis().sadd(index, *gone)
    for wording in [TEA, "Green tea: how hot should the water be?", "What temperature is right for green tea?"]:
        ask(wording, [collection.pk])
    members = {m.decode() for m in redis().smembers(index)}
    assert members - set(gone) and len(members & set(gone)) < 20
