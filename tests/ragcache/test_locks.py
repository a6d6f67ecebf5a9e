"""Single-flight locks never leave askers stuck: short, renewed by a live holder, waited
for a bounded time, released whatever happens to the holder's ask."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from django.db import OperationalError, connection

from chat.generators import get_generator
from chat.pipeline import Answer, question_normalize, retrieval_settings
from documents.embedding import get_embedder
from documents.services import collections_bump
from ragcache import keys
from ragcache.client import breaker
from ragcache.conf import conf
from ragcache.layers import CacheRequest
from tests.chat.factories import handbook
from tests.ragcache.helpers import ask, outcomes, redis

QUESTION = "How hot should the water be for green tea?"


def asked_in_background(question: str, collection_id: int) -> tuple[threading.Thread, list[Any]]:
    results: list[Any] = []

    def run() -> None:
        try:
            results.append(ask(question, [collection_id]))
        except BaseException as exc:  # reported by the test
            results.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, results


def lock_keys(layer: str) -> list[bytes]:
    return list(redis().scan_iter(match=f"{keys.prefix()}lock:{keys.prefix()}{layer}:*"))


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_answer_lock_is_short_and_renewed_while_its_holder_generates(openai_chat, settings):
    settings.RAGCACHE = {**settings.RAGCACHE, "LOCK_TTL": {**conf()["LOCK_TTL"], "ans": 1}}
    collection = handbook()
    openai_chat.route_latency = {"/v1/chat/completions": 2.5}  # longer than the lock's TTL
    thread, results = asked_in_background(QUESTION, collection.pk)
    deadline = time.monotonic() + 10
    while not lock_keys("ans") and time.monotonic() < deadline:
        time.sleep(0.02)
    [lock] = lock_keys("ans")
    assert 0 < redis().pttl(lock) <= 1000
    time.sleep(1.8)  # past the TTL it was taken with: only a renewal keeps it
    assert redis().exists(lock), "the holder is alive: its lock must not expire under it"
    thread.join(20)
    assert not thread.is_alive() and isinstance(results[0], Answer), results
    assert not redis().exists(lock)  # released with the answer


def test_locks_live_seconds_not_minutes_by_default():
    # A holder that vanishes right after taking a lock (or a timeout after SET NX) blocks
    # the others for the lock's TTL at most.
    assert max(conf()["LOCK_TTL"].values()) <= 10


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_waiter_stops_waiting_for_a_holder_that_never_finishes(settings):
    settings.RAGCACHE = {**settings.RAGCACHE, "LOCK_WAIT": {**conf()["LOCK_WAIT"], "ans": 1.0}}
    collection = handbook()
    first = ask(QUESTION, [collection.pk])
    answer_key = next(k for k in redis().scan_iter(match="rc:ans:*")).decode()
    redis().delete(answer_key)
    stop = threading.Event()

    def stuck_holder() -> None:  # alive and renewing, never answering
        while not stop.is_set():
            redis().set(keys.lock(answer_key), "stuck-holder", ex=2)
            stop.wait(0.2)

    holder = threading.Thread(target=stuck_holder, daemon=True)
    holder.start()
    try:
        thread, results = asked_in_background(QUESTION, collection.pk)
        thread.join(30)
        assert not thread.is_alive(), "the waiter was still waiting after 30 s"
    finally:
        stop.set()
    again = results[0]
    assert isinstance(again, Answer) and again.text == first.text
    assert outcomes(again)["ans"] == "miss"
    assert redis().get(keys.lock(answer_key)) == b"stuck-holder"  # not taken from its holder


@pytest.mark.django_db
def test_the_embedding_lock_is_released_when_retrieval_fails():
    collection = handbook()

    def chunks_unreachable(execute, sql, params, many, context):  # the database fails mid-ask
        if "documents_chunk" in sql:
            raise OperationalError("the server closed the connection unexpectedly")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(chunks_unreachable), pytest.raises(OperationalError):
        ask(QUESTION, [collection.pk])
    assert lock_keys("emb") == []
    assert lock_keys("ret") == []
    emb_key = keys.emb(keys.scope_tag([collection.pk]), conf_embed_model(), keys.cache_question(QUESTION))
    assert redis().exists(emb_key)  # and its value kept


def conf_embed_model() -> str:
    from documents.embedding import get_embedder

    return get_embedder().model_name


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_an_answer_lock_whose_store_failed_is_not_renewed_and_goes_within_its_ttl(openai_chat, settings):
    settings.RAGCACHE = {**settings.RAGCACHE, "LOCK_TTL": {**conf()["LOCK_TTL"], "ans": 1}}
    collection = handbook()
    openai_chat.route_latency = {"/v1/chat/completions": 0.6}
    thread, results = asked_in_background(QUESTION, collection.pk)
    deadline = time.monotonic() + 10
    while not lock_keys("ans") and time.monotonic() < deadline:
        time.sleep(0.02)
    [lock] = lock_keys("ans")
    breaker.open_until = time.monotonic() + 1.0  # Redis failed for other asks meanwhile: the store is skipped
    thread.join(20)
    assert isinstance(results[0], Answer)
    time.sleep(2.5)  # past its TTL: nobody renews it any more
    assert not redis().exists(lock)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_eight_concurrent_asks_after_a_bump_make_one_retrieval(settings):
    collection = handbook()
    ask(QUESTION, [collection.pk])
    collections_bump(collection_ids={collection.pk})  # outside a transaction: published at once
    threads = [asked_in_background(QUESTION, collection.pk) for _ in range(8)]
    for thread, _ in threads:
        thread.join(30)
    answers = [results[0] for _, results in threads]
    assert all(isinstance(a, Answer) for a in answers), answers
    assert [outcomes(a)["ret"] for a in answers].count("miss") == 1, [outcomes(a) for a in answers]
    assert len({a.text for a in answers}) == 1


@pytest.mark.django_db
def test_the_embedding_lock_is_released_when_embedding_fails(openai_embeddings):
    collection = handbook()
    openai_embeddings.fail_after(0)
    with pytest.raises(Exception):  # noqa: B017 (whatever the embedder raises reaches the caller)
        ask(QUESTION, [collection.pk])
    assert lock_keys("emb") == [] and lock_keys("ret") == []


@pytest.mark.django_db
def test_a_waiter_that_finds_the_retrieval_at_once_gives_up_its_embedding_lock(settings):
    collection = handbook()
    ask(QUESTION, [collection.pk])
    [ret_key] = redis().scan_iter(match="rc:ret:*")
    stored = redis().get(ret_key)
    redis().delete(ret_key, *redis().scan_iter(match="rc:emb:*"))
    generator, question = get_generator(), keys.cache_question(question_normalize(QUESTION))
    where = {"embed_model": get_embedder().model_name, "k": settings.RETRIEVAL_TOP_K, "question": question,
             "mode": retrieval_settings()}  # fmt: skip
    cache = CacheRequest()
    found = cache.lookup(collection_ids=[collection.pk], generator=generator.cache_id, answer_cacheable=True,
                         prompt_version=generator.prompt_version, **where)  # fmt: skip
    assert found.retrieval is None and lock_keys("emb")  # the lookup gave this ask the embedding's lock
    redis().set(ret_key, stored)  # a concurrent ask stored the retrieval meanwhile
    assert cache.retrieval_claim(tag=found.tag, scope=found.scope, **where) is not None
    cache.flush()  # the next round trip: the answer's claim
    assert lock_keys("emb") == []
