"""The semantic layer at run time: candidates in order, each check, the run-time switches,
and what a semantic hit tells the reader, the trace and the panel."""

from __future__ import annotations

import numpy as np
import pytest
from django.test import Client

from chat.services import trace_shown
from ragcache import switches, values
from ragcache.layers import CacheRequest
from ragcache.stats import summary
from tests.chat.factories import handbook
from tests.chat.test_views import asked_message, stream
from tests.ragcache.helpers import ask, outcomes, redis, round_trips

pytestmark = pytest.mark.django_db

DUE = "When is the annual tax return due?"
NOT_DUE = "When is the annual tax return not due?"
TEA = "How hot should the water be for green tea?"


@pytest.fixture
def semantic(settings):
    """The layer on, with the words check only, as the tests below change it."""

    def configure(threshold: float, *, words: bool = True, context: bool = False) -> None:
        settings.RAGCACHE = {
            **settings.RAGCACHE,
            "ENABLED": {**settings.RAGCACHE["ENABLED"], "sem": True},
            "SEM_THRESHOLD": threshold,
            "SEM_CHECKS": {"words": words, "context": context},
        }

    return configure


def test_a_refused_nearest_question_gives_way_to_the_next_one_above_the_threshold(semantic):
    semantic(0.8)
    collection = handbook()
    ask(DUE, [collection.pk])
    earlier = ask("On which days is the annual tax return not due?", [collection.pk])
    assert outcomes(earlier)["sem"] == "miss"  # its only candidate was DUE: a negation apart
    result = ask(NOT_DUE, [collection.pk])
    assert outcomes(result)["sem"] == "hit"
    assert result.trace["similar_question"] == "On which days is the annual tax return not due?"
    assert result.trace["cache"]["sem"]["similar"]["question"] == "On which days is the annual tax return not due?"
    [refused] = result.trace["cache"]["sem"]["refused"]  # the nearer one, DUE, tried first
    assert refused["question"] == DUE and refused["reason"] == "a negation on one side only"
    assert refused["similarity"] > result.trace["cache"]["sem"]["similar"]["similarity"]
    assert result.text == earlier.text


def test_the_context_check_refuses_an_answer_written_from_other_passages(semantic):
    semantic(0.0, words=False, context=True)  # any earlier question is a candidate: only the check decides
    collection = handbook()
    original = ask(TEA, [collection.pk])
    elsewhere = ask("How do I fix a flat tyre?", [collection.pk])
    assert outcomes(elsewhere)["sem"] == "miss"
    assert [r["reason"] for r in elsewhere.trace["cache"]["sem"]["refused"]] == ["retrieval finds other passages"]
    assert "tyre" in elsewhere.text.lower()  # answered from its own passages
    paraphrase = ask("How hot should water be for brewing green tea?", [collection.pk])
    assert outcomes(paraphrase)["sem"] == "hit" and paraphrase.text == original.text
    assert paraphrase.trace["stages"]["retrieve"] > 0  # the check's retrieval: the price of the check
    assert outcomes(ask("How hot should water be for brewing green tea?", [collection.pk]))["ret"] == "hit"


def test_each_check_is_switched_at_run_time(semantic):
    semantic(0.8)
    collection = handbook()
    ask(DUE, [collection.pk])
    try:
        switches.switches_set(layers={}, sem_threshold=None, checks={"words": False})
        unchecked = ask(NOT_DUE, [collection.pk])
        assert outcomes(unchecked)["sem"] == "hit"  # what the words check is there to refuse
        switches.switches_set(layers={}, sem_threshold=None, checks={"words": True})
        checked = ask("When is the annual tax return never due?", [collection.pk])
        assert outcomes(checked)["sem"] == "miss"
        assert {r["reason"] for r in checked.trace["cache"]["sem"]["refused"]} == {"a negation on one side only"}
    finally:
        switches.switches_reset()


def test_a_refusal_is_counted_apart_for_the_panel(semantic):
    semantic(0.8)
    collection = handbook()
    ask(DUE, [collection.pk])
    ask(NOT_DUE, [collection.pk])
    histogram = summary()["similarity"]["5m"]
    assert sum(histogram["refused"].values()) == 1 and not histogram["hit"]
    assert max(histogram["refused"]) >= 90  # the nearest question's similarity, in hundredths


def test_everyone_reads_which_question_a_similar_answer_answered(semantic):
    semantic(0.8)
    handbook()
    reader = Client()
    stream(reader, asked_message(reader.post("/ask/", {"question": TEA}, headers={"HX-Request": "true"})))
    paraphrase = "How hot should water be for brewing green tea?"
    message_id = asked_message(reader.post("/ask/", {"question": paraphrase}, headers={"HX-Request": "true"}))
    page = stream(reader, message_id)[-1][1]
    assert f"Answer to a similar question: “{TEA}”" in page
    assert 'cache-hit">sem' not in page  # the layers stay for staff
    staff_trace = {"from_cache": True, "total_ms": 4.0, "similar_question": TEA, "cache": {"sem": {"outcome": "hit"}}}
    assert trace_shown(staff_trace, is_staff=False) == {"from_cache": True, "total_ms": 4.0, "similar_question": TEA}


def test_an_exact_answer_names_no_similar_question(semantic):
    semantic(0.8)
    collection = handbook()
    ask(TEA, [collection.pk])
    repeat = ask(TEA, [collection.pk])
    assert outcomes(repeat)["ans"] == "hit" and repeat.trace["similar_question"] is None
    assert "similar_question" not in trace_shown(repeat.trace, is_staff=False)


def test_the_lookup_brings_the_scopes_earlier_questions_without_a_round_trip_of_their_own():
    collection = handbook()
    ask(TEA, [collection.pk])
    with round_trips() as commands:
        result = ask("How hot should water be for brewing green tea?", [collection.pk])
    assert outcomes(result)["sem"] == "hit"
    assert "HGETALL" not in commands and commands.count("MGET") == 1  # the answer, fetched once


def test_a_similar_question_is_never_served_an_answer_written_from_other_passages_since(semantic):
    """A slow ask that read the passages before a change may store its answer after a newer
    one, under the same key: the semantic entry names the context it meant, so that answer
    is not served to a similar question."""
    semantic(0.7, words=False)
    collection = handbook()
    original = ask(TEA, [collection.pk])
    [answer_key] = redis().scan_iter(match="rc:ans:*")
    value = values.decode(redis().get(answer_key), values.ANSWER)
    value["text"] = "Written from passages that have changed since."
    redis().set(answer_key, values.encode_answer(value, context="0" * 32), keepttl=True)  # the slow ask's store
    paraphrase = ask("How hot should water be for brewing green tea?", [collection.pk])
    assert outcomes(paraphrase)["sem"] == "miss" and paraphrase.text == original.text
    assert "changed since" not in paraphrase.text


def test_the_questions_of_an_older_scope_digest_are_never_candidates(semantic):
    semantic(0.7, words=False)
    key, answer_key, context = "rc:sem:{t}:m:g:1", "rc:ans:{t}:g:1:q", "c" * 32
    vector = np.ones(384, dtype=np.float32)
    entry = values.encode_semantic(answer_key=answer_key, answer_context=context, question="an earlier question",
                                   vector=vector, context=[])  # fmt: skip
    redis().hset(key, mapping={"scope": "older", "q1": entry})
    redis().set(answer_key, values.encode_answer({"text": "from older passages", "citations": []}, context=context))
    for scope, served in (("older", True), ("newer", False)):
        hit = CacheRequest().semantic_answer(sem_key=key, scope=scope, vector=vector, question="a question",
                                             context=lambda: [])  # fmt: skip
        assert (hit is not None) is served
