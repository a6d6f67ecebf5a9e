"""Bad input at every entry point of the chat: each gets a clear 4xx or message, never a
500, and nothing is lost. The upload page and the admin have their own table in
tests/documents."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from chat.models import Conversation, Message
from tests.chat.factories import handbook
from tests.servers import site_server

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}
BIG_ID = "9" * 20  # over PostgreSQL's bigint


def api(body: bytes | str, *, method: str = "post", content_type: str = "application/json", **headers: str) -> Any:
    client = Client(raise_request_exception=False)
    data = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    return getattr(client, method)("/api/ask", data=data, content_type=content_type, headers=headers)


def as_json(payload: object) -> str:
    return json.dumps(payload)  # escapes lone surrogates as \\udXXX, as a client would send them


API_CASES: list[tuple[str, bytes | str, int, str]] = [
    ("not JSON", "{", 400, "not valid JSON"),
    ("empty body", "", 400, "Send a JSON object"),
    ("a JSON array", "[]", 400, "Send a JSON object"),
    ("a JSON string", '"tea?"', 400, "Send a JSON object"),
    ("NaN", "NaN", 400, "Send a JSON object"),
    ("a number too large", '{"question": 1e999}', 400, "Send a JSON object"),
    ("invalid UTF-8", b'{"question": "\xff\xfe"}', 400, "not valid JSON"),
    ("question a number", as_json({"question": 42}), 400, "Send a JSON object"),
    ("question null", as_json({"question": None}), 400, "Send a JSON object"),
    ("question a list", as_json({"question": ["tea"]}), 400, "Send a JSON object"),
    ("question empty", as_json({"question": ""}), 400, "Type a question first."),
    ("question blank", as_json({"question": " \n\t "}), 400, "Type a question first."),
    ("question too long", as_json({"question": "x" * 2001}), 400, "the limit is 2,000"),
    ("lone high surrogate", as_json({"question": "\ud800 test"}), 400, "not text"),
    ("lone low surrogate", as_json({"question": "a\udc80"}), 400, "not text"),
    ("NUL in the question", as_json({"question": "tea\u0000?"}), 400, "not text"),
    ("escape sequences", as_json({"question": "\u001b[31mtea\u0007?"}), 400, "not text"),
    ("collections a string", as_json({"question": "Tea?", "collections": "Handbook"}), 400, "must be a list"),
    ("collections an object", as_json({"question": "Tea?", "collections": {"a": 1}}), 400, "must be a list"),
    ("a collection null", as_json({"question": "Tea?", "collections": [None]}), 400, "by its name"),
    ("a collection an object", as_json({"question": "Tea?", "collections": [{"a": 1}]}), 400, "by its name"),
    ("a collection a float", as_json({"question": "Tea?", "collections": [1.5]}), 400, "by its name"),
    ("a collection true", as_json({"question": "Tea?", "collections": [True]}), 400, "by its name"),
    ("an unknown collection", as_json({"question": "Tea?", "collections": ["Nope"]}), 400, "Unknown collection: Nope"),
    ("a surrogate collection", as_json({"question": "Tea?", "collections": ["\udfff"]}), 400, "Unknown collection"),
    ("a NUL collection", as_json({"question": "Tea?", "collections": ["Hand\u0000book"]}), 400, "Unknown collection"),
    ("an id over bigint", as_json({"question": "Tea?", "collections": [int(BIG_ID)]}), 400, "Unknown collection"),
    (
        "too many collections",
        as_json({"question": "Tea?", "collections": [str(n) for n in range(21)]}),
        400,
        "at most 20",
    ),  # fmt: skip
    ("nested 1,000 deep", '{"question": ' + "[" * 1000 + "]" * 1000 + "}", 400, "not valid JSON"),
    ("a number of 5,000 digits", '{"question": "Tea?", "collections": [' + "1" * 5000 + "]}", 400, "not valid JSON"),
]


@pytest.mark.parametrize(("body", "status", "message"), [case[1:] for case in API_CASES],
                         ids=[case[0] for case in API_CASES])  # fmt: skip
def test_the_api_refuses_bad_input_with_a_json_reason(body, status, message):
    handbook()
    response = api(body)
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert message in response.json()["error"]


API_ACCEPTED = [
    ("HTML in the question", "<script>alert(1)</script> How hot should the water be for green tea?"),
    ("emoji", "🍵 How hot should the water be for green tea?"),
    ("right-to-left override", "\u202eHow hot should the water be for green tea?"),
    ("tabs and newlines", "How hot\tshould the water\nbe for green tea?"),
    ("unknown fields", "How hot should the water be for green tea?"),
]


@pytest.mark.parametrize("question", [case[1] for case in API_ACCEPTED], ids=[case[0] for case in API_ACCEPTED])
def test_the_api_answers_odd_but_valid_questions(question):
    handbook()
    response = api(as_json({"question": question, "unknown": {"nested": [1, 2]}}))
    assert response.status_code == 200
    assert "eighty degrees" in response.json()["answer"]


@pytest.mark.parametrize("size", [3 * 1024 * 1024, 30 * 1024 * 1024], ids=["3 MB", "30 MB"])
def test_a_body_over_the_limit_is_a_413_in_json(size):
    response = api(as_json({"question": "x" * size}))
    assert response.status_code == 413
    assert "too large" in response.json()["error"]


@pytest.mark.parametrize("method", ["get", "put", "delete", "patch"])
def test_other_methods_on_the_api_get_a_405_in_json(method):
    response = api("", method=method)
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert "POST" in response.json()["error"]


FORM_CASES: list[tuple[str, dict[str, str], str]] = [
    ("empty question", {"question": ""}, "Type a question first."),
    ("NUL in the question", {"question": "tea\x00?"}, "not text"),
    ("too long", {"question": "x" * 2001}, "the limit is 2,000"),
    ("a conversation id of letters", {"question": "Tea?", "conversation": "abc"}, "does not exist any more"),
    ("a conversation id over bigint", {"question": "Tea?", "conversation": BIG_ID}, "does not exist any more"),
    ("a conversation id of 5,000 digits", {"question": "Tea?", "conversation": "7" * 5000}, "does not exist any more"),
    ("an unknown collection", {"question": "Tea?", "collections": "Nope"}, "Unknown collection"),
    ("a collection id over bigint", {"question": "Tea?", "collections": BIG_ID}, "Unknown collection"),
]


@pytest.mark.parametrize("fields", [case[1] for case in FORM_CASES], ids=[case[0] for case in FORM_CASES])
def test_the_chat_form_refuses_bad_input_with_a_message(fields):
    handbook()
    message = next(case[2] for case in FORM_CASES if case[1] is fields)
    response = Client(raise_request_exception=False).post("/ask/", fields, headers=HTMX)
    assert response.status_code == 422
    assert message in response.content.decode()
    assert not Message.objects.exists()  # nothing half-stored


def test_someone_elses_conversation_is_not_theirs_to_continue():
    handbook()
    owner = Client()
    owner.post("/ask/", {"question": "How do I fix a flat tyre?"}, headers=HTMX)
    conversation = Conversation.objects.get()
    response = Client().post("/ask/", {"question": "Tea?", "conversation": conversation.pk}, headers=HTMX)
    assert response.status_code == 422 and "does not exist any more" in response.content.decode()
    assert conversation.messages.count() == 2  # untouched


URL_CASES = [
    ("someone else's answer", "stream of another"),
    ("an answer that does not exist", "/messages/999999/stream/"),
    ("an answer id over bigint", f"/messages/{BIG_ID}/stream/"),
    ("a conversation that does not exist", "/c/999999/"),
    ("a conversation id over bigint", f"/c/{BIG_ID}/"),
    ("a source that does not exist", "/sources/999999/"),
    ("a source id over bigint", f"/sources/{BIG_ID}/"),
    ("a private collection's source", "private source"),
    ("a source with a NUL passage", "NUL passage"),
]


@pytest.mark.parametrize("url", [case[1] for case in URL_CASES], ids=[case[0] for case in URL_CASES])
def test_urls_to_what_is_not_theirs_or_not_there_are_404(url):
    collection = handbook()
    if url == "stream of another":
        owner = Client()
        owner.post("/ask/", {"question": "Tea?"}, headers=HTMX)
        url = f"/messages/{Message.objects.get(role='assistant').pk}/stream/"
    elif url == "NUL passage":
        url = f"/sources/{collection.documents.first().pk}/?passage=%00"
    elif url == "private source":
        private = handbook("Private", is_public=False)
        url = f"/sources/{private.documents.first().pk}/"
    response = Client(raise_request_exception=False).get(url)
    assert response.status_code == (200 if url.endswith("%00") else 404), url  # a passage that is not there: the page
    assert collection.documents.count() == 8  # nothing lost


STATIC_ESCAPES = ["/static/../../etc/passwd", "/static/%2e%2e/%2e%2e/etc/passwd", "/static/..%2f..%2fetc/passwd",
                  "/static/css/../../../../etc/passwd", "/static/%00", "/static/" + "a" * 5000]  # fmt: skip


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("kind", ["gunicorn", "runserver"], ids=["make run", "make dev"])
def test_paths_out_of_the_static_files_are_404_on_the_real_servers(kind, test_database_url, redis_url, tmp_path):
    import http.client

    with site_server(kind, database_url=test_database_url, redis_url=redis_url, log=tmp_path / "server.log") as port:
        for path in STATIC_ESCAPES:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            connection.putrequest("GET", path, skip_accept_encoding=True)  # sent as is, not normalized
            connection.endheaders()
            response = connection.getresponse()
            body = response.read()
            assert response.status in {400, 404, 414}, (path, response.status, body[:300])
            assert b"root:" not in body
