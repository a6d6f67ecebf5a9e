from __future__ import annotations

import threading
import time

import pytest
from django.db import connection

from chat.generators.openai import OpenAIGenerator
from documents.models import Collection
from documents.services import document_ingest, document_replace_source
from ragcache import keys
from ragcache.client import breaker
from ragcache.stats import totals
from tests.chat.factories import handbook
from tests.ragcache.helpers import ask, generation_copy, outcomes, own_redis, redis

QUESTION = "How hot should the water be for green tea?"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_identical_misses_make_one_embedding_and_one_llm_call(openai_embeddings, openai_chat):
    collection = handbook()
    openai_chat.calls.clear()
    openai_chat.latency = 0.3  # long enough for every thread to arrive while the first works
    start = threading.Barrier(20)
    answers: list[str] = []
    errors: list[BaseException] = []

    def asker() -> None:
        try:
            start.wait(10)
            answers.append(ask(QUESTION, [collection.pk]).text)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=asker) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    assert len(answers) == 20 and len(set(answers)) == 1
    assert openai_chat.calls["/v1/embeddings"] == 1
    assert openai_chat.calls["/v1/chat/completions"] == 1


@pytest.mark.django_db
def test_a_dead_lock_holder_frees_the_lock_by_expiry(settings):
    settings.RAGCACHE = {**settings.RAGCACHE, "LOCK_TTL": {"emb": 1, "ans": 1}}
    collection = handbook()
    # Another process took the answer's lock and died: the lock outlives it by its TTL.
    result = ask(QUESTION, [collection.pk])
    answer_key = next(k for k in redis().scan_iter(match="rc:ans:*"))
    redis().delete(answer_key)
    redis().set(keys.lock(answer_key.decode()), "dead-holder", ex=1)
    started = time.monotonic()
    again = ask(QUESTION, [collection.pk])
    assert again.text == result.text and outcomes(again)["ans"] == "miss"
    assert time.monotonic() - started >= 0.5  # it waited for the lock before generating
    assert redis().exists(answer_key)


@pytest.mark.slow
@pytest.mark.django_db
def test_with_redis_down_every_ask_is_answered_and_hits_resume_when_it_returns(redis_server, settings):
    server = own_redis(redis_server)
    settings.RAGCACHE = {**settings.RAGCACHE, "BREAKER_OPEN_SECONDS": 0.5}
    collection = handbook()
    expected = ask(QUESTION, [collection.pk]).text
    server.stop()
    try:
        during = [ask(q, [collection.pk]) for q in [QUESTION, "How do I fix a flat tyre?", QUESTION, QUESTION]]
        assert [r.text for r in during][0] == expected and all(r.text for r in during)
        assert all(outcomes(r)["ret"] == "error" for r in during)
        assert sum(breaker.errors.values()) >= 4
    finally:
        server.start()
    time.sleep(0.6)  # the circuit closes
    assert outcomes(ask(QUESTION, [collection.pk]))["ret"] == "miss"  # the restarted Redis is empty
    back = ask(QUESTION, [collection.pk])
    assert outcomes(back) == {"ret": "hit", "ans": "hit"} and back.text == expected
    assert totals(5)["ret"]["error"] >= 1  # the outage's errors reached the statistics


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_bump_lost_during_an_outage_cannot_bring_back_a_stale_answer(redis_server):
    server = own_redis(redis_server)
    collection = handbook()
    tea = collection.documents.get(title="tea")
    assert "eighty degrees" in ask(QUESTION, [collection.pk]).text
    redis().save()  # Redis will come back from this snapshot, old entries and all
    server.stop()
    try:
        document_replace_source(document=tea, filename="tea.txt", data=b"Green tea wants water at seventy degrees.")
        document_ingest(document_id=tea.pk)  # committed; neither its bump nor its cleanup reached Redis
    finally:
        server.start()
    generation = Collection.objects.get(pk=collection.pk).generation
    assert generation_copy(collection.pk) < generation  # the copy is stale
    time.sleep(max(0.0, breaker.open_until - time.monotonic()))
    result = ask(QUESTION, [collection.pk])
    assert "seventy degrees" in result.text and "eighty" not in result.text
    assert generation_copy(collection.pk) == generation


@pytest.mark.django_db
def test_semantic_answers_for_paraphrases_in_the_same_scope_only(settings):
    settings.RAGCACHE = {**settings.RAGCACHE, "ENABLED": {**settings.RAGCACHE["ENABLED"], "sem": True},
                         "SEM_THRESHOLD": 0.9}  # fmt: skip
    collection, other = handbook(), handbook("Other")
    original = ask(QUESTION, [collection.pk])
    paraphrase = ask("How hot should water be for brewing green tea?", [collection.pk])
    assert outcomes(paraphrase)["sem"] == "hit" and paraphrase.text == original.text
    unrelated = ask("How do I fix a flat tyre?", [collection.pk])
    assert outcomes(unrelated)["sem"] == "miss"
    elsewhere = ask("How hot should water be for brewing green tea?", [other.pk])
    assert outcomes(elsewhere).get("sem") != "hit"
    day = totals(1440)
    assert day["sem"]["hit"] == 1 and day["ans"]["hit"] == 0  # counted apart


@pytest.mark.django_db
def test_a_near_miss_above_the_threshold_is_refused_and_a_paraphrase_served(settings):
    settings.RAGCACHE = {**settings.RAGCACHE, "ENABLED": {**settings.RAGCACHE["ENABLED"], "sem": True},
                         "SEM_THRESHOLD": 0.6}  # fmt: skip
    collection = handbook()
    original = ask("When is the annual tax return due?", [collection.pk])
    near_miss = ask("When is the annual tax return not due?", [collection.pk])
    assert outcomes(near_miss)["sem"] == "miss"
    [refused] = near_miss.trace["cache"]["sem"]["refused"]
    assert refused["question"] == "When is the annual tax return due?"
    assert refused["reason"] == "a negation on one side only" and refused["similarity"] >= 0.6
    paraphrase = ask("when's the annual tax return due", [collection.pk])
    assert outcomes(paraphrase)["sem"] == "hit" and paraphrase.text == original.text


@pytest.mark.django_db
def test_semantic_answers_are_on_by_default_with_the_words_check():
    collection = handbook()
    original = ask(QUESTION, [collection.pk])
    reworded = ask("How hot should water be for brewing green tea?", [collection.pk])
    assert outcomes(reworded)["sem"] == "hit" and reworded.text == original.text
    assert outcomes(ask("How cold should the water be for green tea?", [collection.pk]))["sem"] == "miss"


@pytest.mark.django_db
def test_a_generator_above_the_temperature_bound_is_never_cached(openai_chat, settings):
    settings.OPENAI_TEMPERATURE = 0.9
    collection = handbook()
    assert OpenAIGenerator().deterministic is False
    ask(QUESTION, [collection.pk])
    second = ask(QUESTION, [collection.pk])
    assert outcomes(second)["ans"] == "bypass"
    assert openai_chat.calls["/v1/chat/completions"] == 2
    assert not list(redis().scan_iter(match="rc:ans:*"))


@pytest.mark.django_db
def test_a_semantic_lookup_reads_a_bounded_number_of_bytes(settings):
    settings.RAGCACHE = {**settings.RAGCACHE, "ENABLED": {**settings.RAGCACHE["ENABLED"], "sem": True},
                         "SEM_MAX_ENTRIES": 4}  # fmt: skip
    collection = handbook()
    questions = ["How hot should the water be for green tea?", "How do I fix a flat tyre?",
                 "When is the tax return due?", "What does error E1001 mean?", "What does error code 404 mean?",
                 "How many stars are visible?", "What changed in the release?"]  # fmt: skip
    for question in questions:
        ask(question, [collection.pk])
    [sem_key] = redis().scan_iter(match="rc:sem:*")
    stored = redis().hgetall(sem_key)
    assert stored.pop(b"scope") and len(stored) == 4  # an older one goes for each new one
    assert max(len(raw) for raw in stored.values()) <= 384 * 2 + 400  # a half-precision vector and its references
    assert outcomes(ask(questions[-1] + " ", [collection.pk]))["ans"] == "hit"  # still served
    paraphrase = ask("What did change in the release?", [collection.pk])
    assert outcomes(paraphrase)["sem"] == "hit"
