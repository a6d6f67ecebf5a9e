"""Request ids: on every response, on every log line, sane whatever the caller sends."""

from __future__ import annotations

import json
import logging
import re

import pytest
from django.test import Client

from ragsite import requestid


@pytest.mark.parametrize(
    ("sent", "kept"), [(None, False), ("edge-proxy.4f1c", True), ("two words", False), ("x" * 65, False)]
)
def test_a_response_carries_the_callers_sane_id_or_a_new_one(sent, kept):
    headers = {requestid.HEADER: sent} if sent is not None else {}
    returned = Client().get("/healthz", headers=headers)[requestid.HEADER]
    if kept:
        assert returned == sent
    else:
        assert re.fullmatch(r"[0-9a-f]{32}", returned)
    assert requestid.current.get() == requestid.NONE  # nothing leaks into the next request on this thread


def test_a_log_line_names_the_request_in_plain_and_in_json():
    record = logging.LogRecord("chat", logging.WARNING, __file__, 1, "slow answer: %d ms", (812,), None)
    token = requestid.current.set("edge-proxy.4f1c")
    try:
        assert requestid.RequestIdFilter().filter(record)
    finally:
        requestid.current.reset(token)
    plain = logging.Formatter("%(levelname)s %(name)s [%(request_id)s]: %(message)s").format(record)
    assert plain == "WARNING chat [edge-proxy.4f1c]: slow answer: 812 ms"
    entry = json.loads(requestid.JsonFormatter().format(record))
    assert entry["request_id"] == "edge-proxy.4f1c" and entry["message"] == "slow answer: 812 ms"
    assert entry["level"] == "WARNING" and entry["logger"] == "chat"


@pytest.mark.django_db
def test_a_line_logged_while_an_answer_streams_names_its_request(openai_embeddings, caplog):
    from tests.chat.factories import handbook
    from tests.chat.test_views import ask, asked_message

    handbook()
    client = Client()
    message_id = asked_message(ask(client, "A question nobody asked before?"))
    openai_embeddings.fail_after(0)  # the answer's embedding fails: the stream logs it
    caplog.handler.addFilter(requestid.RequestIdFilter())
    response = client.get(f"/messages/{message_id}/stream/", headers={requestid.HEADER: "sse-9d2e"})
    assert response[requestid.HEADER] == "sse-9d2e"
    b"".join(response.streaming_content)  # the body is made here, after the middleware returned
    failures = [record for record in caplog.records if "embedding service failed" in record.getMessage()]
    assert failures and all(record.request_id == "sse-9d2e" for record in failures)
