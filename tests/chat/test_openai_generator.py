from __future__ import annotations

import pytest

from chat.generators import GenerationError, Usage, get_generator
from chat.generators.base import Passage
from chat.generators.openai import OpenAIGenerator, build_messages
from chat.pipeline import answer
from ragcache.stats import totals
from tests.chat.factories import handbook
from tests.ragcache.helpers import ask

PASSAGES = [
    Passage(chunk_id=1, document_id=1, title="Tea", text="Brew green tea at eighty degrees. Steep it briefly.",
            content_hash="a", score=0.03),
    Passage(chunk_id=2, document_id=2, title="Bikes", text="Patch a tyre with rubber.", content_hash="b", score=0.02),
]  # fmt: skip


def test_the_generator_is_openai_once_an_endpoint_is_configured(settings):
    settings.GENERATOR = ""
    settings.OPENAI_BASE_URL = None
    settings.OPENAI_API_KEY = ""
    assert get_generator().name == "extractive"
    settings.OPENAI_BASE_URL = "http://127.0.0.1:9/v1"
    assert get_generator().name == "openai"


def test_streams_the_answer_in_pieces_with_usage_and_cost(openai_chat):
    pieces = list(OpenAIGenerator().stream(question="How hot for green tea?", passages=PASSAGES))
    text = "".join(p for p in pieces if isinstance(p, str))
    usage = [p for p in pieces if isinstance(p, Usage)]
    assert text == "According to the passages, Brew green tea at eighty degrees. [1]"
    assert len([p for p in pieces if isinstance(p, str)]) > 3  # streamed, not one block
    assert len(usage) == 1 and usage[0].completion_tokens > 0 and usage[0].prompt_tokens > 20
    expected_cost = (usage[0].prompt_tokens * 0.15 + usage[0].completion_tokens * 0.60) / 1_000_000
    assert usage[0].cost_usd == pytest.approx(expected_cost)
    request = openai_chat.last_request
    assert request["stream"] is True and request["model"] == "gpt-4o-mini" and request["temperature"] == 0.0
    assert request["messages"] == build_messages("How hot for green tea?", PASSAGES)


def test_a_model_without_a_price_has_no_cost(openai_chat, settings):
    settings.OPENAI_CHAT_MODEL = "local-llama"
    usage = [p for p in OpenAIGenerator().stream(question="q?", passages=PASSAGES) if isinstance(p, Usage)]
    assert usage[0].cost_usd is None


def test_an_endpoint_error_raises_a_generation_error(openai_chat):
    openai_chat.fail_after(0)
    with pytest.raises(GenerationError, match="failed to answer"):
        list(OpenAIGenerator().stream(question="q?", passages=PASSAGES))


def test_a_timeout_raises_a_generation_error(openai_chat, settings):
    settings.OPENAI_TIMEOUT_SECONDS = 0.3
    openai_chat.latency = 1.0
    with pytest.raises(GenerationError, match="did not answer in time"):
        list(OpenAIGenerator().stream(question="q?", passages=PASSAGES))


def test_an_answer_cut_off_at_the_length_limit_is_an_error(openai_chat):
    openai_chat.finish_reason = "length"
    with pytest.raises(GenerationError, match="cut off"):
        list(OpenAIGenerator().stream(question="q?", passages=PASSAGES))


@pytest.mark.django_db
def test_the_pipeline_answers_through_the_openai_sdk_and_reports_tokens(openai_chat):
    collection = handbook()
    result = answer(question="How hot should the water be for green tea?", collection_ids=[collection.pk])
    assert result.text.startswith("According to the passages, Green tea should be brewed")
    assert result.citations[0]["title"] == "tea" and [c["number"] for c in result.citations] == [1]
    trace = result.trace
    assert trace["generator"] == "openai" and trace["model"] == "gpt-4o-mini"
    assert trace["completion_tokens"] > 0 and trace["cost_usd"] > 0
    assert openai_chat.calls["/v1/chat/completions"] == 1


@pytest.mark.parametrize(("finish_reason", "message"), [(None, "no reason"), ("content_filter", "content_filter")])
def test_an_answer_that_did_not_finish_is_an_error(openai_chat, finish_reason, message):
    openai_chat.finish_reason = finish_reason
    with pytest.raises(GenerationError, match=f"did not finish its answer \\({message}\\)"):
        list(OpenAIGenerator().stream(question="q?", passages=PASSAGES))


@pytest.mark.django_db
def test_the_generator_and_its_client_are_built_once_per_process(openai_chat):
    collection = handbook()
    generator = get_generator()
    for question in ["How hot for green tea?", "How do I fix a flat tyre?", "How hot for green tea?"]:
        ask(question, [collection.pk])
    assert get_generator() is generator and get_generator().client is generator.client
    assert openai_chat.calls["/v1/chat/completions"] == 2


@pytest.mark.django_db
def test_the_embedding_client_keeps_its_connection_between_asks(openai_embeddings, openai_chat):
    collection = handbook()  # its ingestion opened the embedder's connection
    openai_embeddings.calls.clear()
    openai_embeddings.connections = 0
    for question in ["How hot for green tea?", "How do I fix a flat tyre?", "When is the tax return due?"]:
        ask(question, [collection.pk])
    assert openai_embeddings.calls["/v1/embeddings"] == 3
    # The SDK closes a streamed completion at [DONE], so each takes a connection of its own;
    # the three embedding calls opened none: they reused the one the ingestion opened.
    assert openai_embeddings.connections == openai_chat.calls["/v1/chat/completions"] == 3


@pytest.mark.django_db
def test_a_server_that_reports_no_usage_gets_an_estimate_marked_as_such(openai_chat):
    collection = handbook()
    openai_chat.send_usage = False
    first = ask("How hot for green tea?", [collection.pk]).trace
    assert first["usage_estimated"] is True
    assert first["prompt_tokens"] > 20 and first["completion_tokens"] > 5 and first["cost_usd"] > 0
    repeat = ask("How hot for green tea?", [collection.pk]).trace
    assert repeat["from_cache"] is True and repeat["usage_estimated"] is True
    assert totals(5)["ans"]["saved_tokens"] == first["prompt_tokens"] + first["completion_tokens"]
    openai_chat.send_usage = True
    assert ask("How do I fix a flat tyre?", [collection.pk]).trace["usage_estimated"] is False
