from __future__ import annotations

import json

import pytest
from django.test import Client

from tests.chat.factories import handbook

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
    assert set(data["trace"]["stages"]) >= {"embed", "retrieve", "generate"}


def test_collections_may_be_named_by_id_and_default_to_every_readable_one():
    collection = handbook()
    by_id = post(Client(), {"question": "How do I fix a flat tyre?", "collections": [collection.pk]})
    everything = post(Client(), {"question": "How do I fix a flat tyre?"})
    assert by_id.json()["citations"][0]["title"] == everything.json()["citations"][0]["title"] == "bike"


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ("{not json", "The body is not valid JSON."),
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
