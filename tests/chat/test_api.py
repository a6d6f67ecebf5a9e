from __future__ import annotations

import json
import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from documents.models import Collection
from documents.services import catalog_bump
from ragcache import catalog
from tests.chat.factories import handbook
from tests.ragcache.helpers import round_trips

pytestmark = pytest.mark.django_db


def post(client: Client, payload: object, **headers: str):
    body = payload if isinstance(payload, str | bytes) else json.dumps(payload)
    return client.post("/api/ask", body, content_type="application/json", headers=headers)


def test_answers_with_citations_and_a_trace():
    handbook()
    response = post(Client(), {"question": "How hot should the water be for green tea?", "collections": ["Handbook"]})
    assert response.status_code == 200
    data = response.json()
    assert set(data) == {"answer", "citations", "trace"}
    assert "Green tea should be brewed" in data["answer"]
    assert data["citations"][0]["title"] == "tea" and data["citations"][0]["url"].startswith("/sources/")
    assert data["trace"]["from_cache"] is False and data["trace"]["total_ms"] > 0


def test_collections_may_be_named_by_id_and_default_to_every_readable_one():
    collection = handbook()
    by_id = post(Client(), {"question": "How do I fix a flat tyre?", "collections": [collection.pk]})
    everything = post(Client(), {"question": "How do I fix a flat tyre?"})
    assert by_id.json()["citations"][0]["title"] == everything.json()["citations"][0]["title"] == "bike"


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ("{not json", "The body is not valid JSON"),
        (["a", "list"], "Send a JSON object like"),
        ({"collections": ["Handbook"]}, "Send a JSON object like"),
        ({"question": 42}, "Send a JSON object like"),
        ({"question": ""}, "Type a question first."),
        ({"question": "x" * 2001}, "the limit is 2,000"),
        ({"question": "Tea?", "collections": ["Nope", "Handbook"]}, "Unknown collection: Nope."),
        ({"question": "Tea?", "collections": "Handbook"}, "collections must be a list"),
        ({"question": "Tea?", "collections": ["²"]}, "Unknown collection: ²."),
    ],
)
def test_bad_requests_get_a_400_with_the_reason(payload, message):
    handbook()
    response = post(Client(), payload)
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_only_post_is_allowed():
    assert Client().get("/api/ask").status_code == 405


def test_a_failing_language_model_is_a_502_with_the_reason(openai_chat):
    handbook()
    openai_chat.fail_after(0)
    response = post(Client(), {"question": "Tea?"})
    assert response.status_code == 502
    assert "The language model failed to answer" in response.json()["error"]


def test_a_private_collection_is_unknown_to_an_anonymous_caller():
    handbook("Private", is_public=False)
    response = post(Client(), {"question": "Tea?", "collections": ["Private"]})
    assert response.status_code == 400 and response.json()["error"] == "Unknown collection: Private."


def test_a_signed_in_session_must_pass_the_csrf_check(admin_user):
    handbook("Private", is_public=False)
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    assert post(client, {"question": "Tea?", "collections": ["Private"]}).status_code == 403
    client.get("/")  # sets the CSRF cookie, as the page does for a browser
    token = client.cookies["csrftoken"].value
    response = post(client, {"question": "Tea?", "collections": ["Private"]}, X_CSRFToken=token)
    assert response.status_code == 200 and response.json()["citations"]


TEA = "How hot should the water be for green tea?"


@pytest.mark.parametrize(
    ("rate", "per_ask"),
    [("", ["EVALSHA"]), ("30/m", ["SET", "EVAL", "EVALSHA"])],
    ids=["the speed layer alone", "with the default rate limit"],
)
def test_an_anonymous_fully_cached_ask_sends_no_sql_and_one_redis_command_of_the_cache(settings, rate, per_ask):
    settings.ASK_RATE = rate
    handbook()
    assert post(Client(), {"question": TEA}).status_code == 200
    with CaptureQueriesContext(connection) as queries, round_trips() as commands:
        response = post(Client(), {"question": TEA, "collections": ["Handbook"]})
        response = post(Client(), {"question": TEA})
    assert response.status_code == 200 and response.json()["trace"]["from_cache"] is True
    assert [q["sql"] for q in queries] == []
    # One script for the scope, generations, entries and statistics; before it, the rate
    # limit's own count (django-ratelimit: SET NX, then INCR as a script).
    assert commands == per_ask * 2


def test_a_signed_in_fully_cached_ask_reads_only_its_session_and_user(admin_user):
    handbook()
    client = Client()
    client.force_login(admin_user)
    assert post(client, {"question": TEA}).status_code == 200
    with CaptureQueriesContext(connection) as queries, round_trips() as commands:
        response = post(client, {"question": TEA})
    assert response.json()["trace"]["from_cache"] is True
    assert [re.search(r'FROM "(\w+)"', q["sql"]).group(1) for q in queries] == ["django_session", "auth_user"]
    assert commands == ["EVALSHA"]


def test_a_collection_made_private_is_never_read_through_an_older_catalog_copy(django_capture_on_commit_callbacks):
    collection = handbook()
    assert post(Client(), {"question": TEA, "collections": ["Handbook"]}).status_code == 200  # copy read
    old_version = catalog.current().version
    with django_capture_on_commit_callbacks(execute=True):  # another process's change, published on commit
        Collection.objects.filter(pk=collection.pk).update(is_public=False)
        catalog_bump()
    assert catalog.current().version == old_version  # this process still holds the old copy ...
    named = post(Client(), {"question": TEA, "collections": ["Handbook"]})
    assert named.status_code == 400 and "Unknown collection: Handbook." in named.json()["error"]
    everything = post(Client(), {"question": TEA})
    assert everything.status_code == 400 and "no collection to ask" in everything.json()["error"]
    assert catalog.current().version > old_version  # ... until the lookup found it old


def test_a_collection_made_after_the_catalog_copy_is_found_by_name(django_capture_on_commit_callbacks):
    handbook()
    assert post(Client(), {"question": TEA}).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        handbook("Second handbook")
    response = post(Client(), {"question": TEA, "collections": ["Second handbook"]})
    assert response.status_code == 200 and response.json()["citations"][0]["title"] == "tea"


@pytest.mark.slow
def test_with_redis_down_the_scope_comes_from_the_database(redis_server, django_capture_on_commit_callbacks):
    if redis_server is None:
        pytest.skip("stopping Redis needs the suite's own redis-server (TEST_REDIS_URL is set)")
    collection = handbook()
    assert post(Client(), {"question": TEA}).status_code == 200
    redis_server.stop()
    try:
        with django_capture_on_commit_callbacks(execute=True):
            Collection.objects.filter(pk=collection.pk).update(is_public=False)
            catalog_bump()  # its publish fails: Redis is down
        response = post(Client(), {"question": TEA, "collections": ["Handbook"]})
    finally:
        redis_server.start()
    assert response.status_code == 400 and "Unknown collection: Handbook." in response.json()["error"]


def test_an_embedding_service_that_fails_is_a_503_with_a_reason_not_a_500(openai_embeddings):
    handbook()  # ingested through the embedding service, which then fails
    openai_embeddings.fail_after(0)
    response = post(Client(), {"question": "A question nobody asked before?"})
    assert response.status_code == 503
    assert response.json() == {"error": "The embedding service did not answer. Please try again in a moment."}
