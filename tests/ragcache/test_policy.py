from __future__ import annotations

import json

import pytest
from django.test import Client

from chat.generators import GenerationError
from chat.models import Message
from chat.pipeline import answer_stream
from ragcache.layers import Policy
from tests.chat.factories import handbook
from tests.chat.test_views import ask as ask_in_chat
from tests.chat.test_views import asked_message, stream
from tests.ragcache.helpers import app_keys, ask, outcomes

pytestmark = pytest.mark.django_db

QUESTION = "How hot should the water be for green tea?"


def api(payload: dict, cache_control: str = "", *, user=None):
    headers = {"Cache-Control": cache_control} if cache_control else {}
    client = Client()
    if user is not None:
        client.force_login(user)
    return client.post("/api/ask", json.dumps(payload), content_type="application/json", headers=headers)


def test_cache_control_no_cache_skips_reads_but_refreshes_the_entries(admin_user):  # staff only: tests/chat/test_access
    handbook()
    api({"question": QUESTION})
    trace = api({"question": QUESTION}, "no-cache", user=admin_user).json()["trace"]
    assert {layer: v["outcome"] for layer, v in trace["cache"].items()} == {
        "ret": "bypass",
        "emb": "bypass",
        "sem": "bypass",
        "ans": "bypass",
    }
    assert trace["from_cache"] is False
    assert api({"question": QUESTION}).json()["trace"]["from_cache"] is True


def test_cache_control_no_store_neither_reads_nor_writes(admin_user):
    handbook()
    api({"question": QUESTION}, "no-store", user=admin_user)
    copies = (b"rc:gen", b"rc:stats", b"rc:catalog", b"rc:scopes", b"rc:switches")
    assert [k for k in app_keys() if not k.startswith(copies)] == []  # no entry
    assert api({"question": QUESTION}).json()["trace"]["from_cache"] is False


@pytest.mark.parametrize("layer", ["emb", "ret", "ans"])
def test_a_layer_turned_off_in_settings_is_bypassed(settings, layer):
    settings.RAGCACHE = {**settings.RAGCACHE, "ENABLED": {**settings.RAGCACHE["ENABLED"], layer: False}}
    collection = handbook()
    ask(QUESTION, [collection.pk])
    if layer == "emb":  # a cached retrieval needs no embedding: ask for another one
        settings.RETRIEVAL_TOP_K = 3
    second = outcomes(ask(QUESTION, [collection.pk]))
    assert second[layer] == "bypass"
    assert not [k for k in app_keys() if k.startswith(f"rc:{layer}:".encode())]


def test_a_failed_generation_is_not_cached(openai_chat):
    collection = handbook()
    openai_chat.fail_after(0)
    with pytest.raises(GenerationError):
        ask(QUESTION, [collection.pk])
    openai_chat.reset()
    result = ask(QUESTION, [collection.pk])
    assert outcomes(result)["ans"] == "miss" and result.text.startswith("According to the passages")


def test_an_answer_cut_off_mid_stream_is_not_cached(openai_chat):
    collection = handbook()
    openai_chat.finish_reason = "length"
    with pytest.raises(GenerationError):
        ask(QUESTION, [collection.pk])
    assert not [k for k in app_keys() if k.startswith(b"rc:ans:")]


def test_an_answer_the_reader_walked_away_from_is_not_cached(openai_chat):
    collection = handbook()
    events = answer_stream(question=QUESTION, collection_ids=[collection.pk], cache_policy=Policy())
    assert next(events)[0] == "token"
    events.close()  # the browser went away mid-answer
    assert not [k for k in app_keys() if k.startswith(b"rc:ans:")]
    assert not [k for k in app_keys() if k.startswith(b"rc:lock:")]  # and the lock was released


def test_a_cached_answer_replays_in_the_chat_at_once_with_its_badge():
    handbook()
    client = Client()
    stream(client, asked_message(ask_in_chat(client, QUESTION)))
    events = stream(client, asked_message(ask_in_chat(client, QUESTION)))
    assert [name for name, _ in events] == ["token", "done"]
    assert "answer from cache" in events[-1][1]
    assert Message.objects.filter(role="assistant").last().trace["from_cache"] is True
