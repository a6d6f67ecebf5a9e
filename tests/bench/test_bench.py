"""The benchmark's parts, small, against the test server (`make bench` runs them full size)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from bench import report, scenarios
from bench.load import Client, load, parse_wrk, wrk_available
from documents.models import Chunk, Collection
from tests.chat.factories import handbook

WRK_OUTPUT = """Running 2s test @ http://127.0.0.1:8000/api/ask
  4 threads and 32 connections
  Latency Distribution
     50%  845.00us
     75%    1.20ms
     90%    2.50ms
     99%    1.03s
  2468 requests in 2.00s, 4.14MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 7
Requests/sec:   1234.50
"""


def test_wrk_output_is_read_with_its_units_and_every_kind_of_error():
    result = parse_wrk(WRK_OUTPUT, clients=32, seconds=2)
    assert (result.p50_ms, result.p99_ms) == (0.845, 1030.0)
    assert (result.requests, result.per_second, result.errors) == (2468, 1234.5, 10)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_our_cache_serves_no_stale_answer_where_a_naive_one_does(live_server):
    handbook()
    figures = scenarios.staleness(SimpleNamespace(base=live_server.url), lockers=3, rounds=3)
    assert figures["asks"] == {"ours": 9, "naive": 9}
    assert figures["stale"]["ours"] == 0
    assert figures["stale"]["naive"] >= 2  # the changed facts, answered from before the change
    assert not Collection.objects.filter(name="Bench lockers").exists()  # cleaned up


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_end_to_end_times_the_three_ways_of_answering_and_the_repeat_is_a_full_hit(live_server):
    handbook()
    figures = scenarios.end_to_end(SimpleNamespace(base=live_server.url), ["How hot should the water be for tea?"])
    assert set(figures["http_median_ms"]) == {"uncached", "miss", "cached"}
    assert figures["server_median_ms"]["cached"] < figures["server_median_ms"]["miss"]
    assert figures["first_over_repeat"] > 1 and "embed" in figures["stage_median_ms"]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_api_shaped_run_asks_a_collection_the_endpoint_embedded_so_each_miss_calls_it(
    live_server, openai_embeddings, tmp_path
):
    handbook()  # embedded by the local model: a site on the endpoint would embed its questions locally
    (tmp_path / "tea.md").write_text("# Tea\n\nBrew green tea at eighty degrees for two minutes.")
    collection = scenarios.prepare_api_demo(str(tmp_path), "API demo", base_url=openai_embeddings.base_url)
    assert collection.embedding_space == "text-embedding-3-small"
    before = openai_embeddings.calls["/v1/embeddings"]
    figures = scenarios.end_to_end(
        SimpleNamespace(base=live_server.url), ["How hot should green tea be?"], collections=[collection.name]
    )
    # the warm-up, then the question uncached and again as a complete miss; the repeat calls nothing
    assert openai_embeddings.calls["/v1/embeddings"] - before == 3
    assert figures["first_over_repeat"] > 1


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_concurrent_clients_against_the_bare_view_and_a_cached_ask(live_server):
    if not wrk_available():
        pytest.fail("wrk is missing: make test installs it")
    collection = handbook()
    Collection.objects.exclude(pk=collection.pk).delete()
    client = Client(live_server.url)
    client.ask(scenarios.QUESTIONS[0])
    status, payload, elapsed = client.request("GET", "/healthz")
    assert (status, payload) == (200, {"status": "ok"}) and elapsed > 0
    client.close()
    rows = scenarios.concurrency(SimpleNamespace(base=live_server.url), clients=[1, 2], seconds=1)
    assert [row["clients"] for row in rows] == [1, 2]
    assert all(row["bare"]["requests"] > 0 and row["cached"]["requests"] > 0 for row in rows)
    assert all(row["bare"]["errors"] == row["cached"]["errors"] == 0 for row in rows)
    assert load(f"{live_server.url}/nowhere", clients=1, seconds=1).errors > 0  # a 404 counts


@pytest.mark.django_db
def test_growth_adds_synthetic_chunks_and_times_both_kinds_of_retrieval():
    handbook()
    rows = scenarios.growth(sizes=[40, 120], samples=2)
    assert [row["chunks"] for row in rows] == [40, 120]  # counted in the collection as it was timed
    assert all(row["hybrid_p50_ms"] > 0 and row["dense_p50_ms"] > 0 and row["miss_p50_ms"] > 0 for row in rows)
    # Gone afterwards: left, its chunks crowded the next run's searches of the demo.
    assert not Collection.objects.filter(name="Bench growth").exists()
    assert not Chunk.objects.filter(embedding_model="synthetic").exists()


@pytest.mark.django_db
def test_ingestion_is_timed_against_the_embedder_on_the_same_chunks(tmp_path: Path):
    pages = []
    for number in range(2):
        page = tmp_path / f"tea{number}.html"
        paragraphs = "".join(f"<p>Steep number {i} of pot {number} takes {i} minutes, or so.</p>" for i in range(40))
        page.write_text(f"<html><body><main><h1>Pot {number}</h1>{paragraphs}</main></body></html>")
        pages.append(page)
    result = scenarios.ingestion(pages, name="Ingestion test")
    assert result["documents"] == 2 and result["chunks"] >= 4
    assert result["ingest_chunks_per_s"] > 0 and result["embedder_chunks_per_s"] > 0 and result["ratio"] > 0
    assert not Collection.objects.filter(name="Ingestion test").exists()  # it cleans up after itself


def test_the_report_states_every_target_and_draws_the_chart(tmp_path: Path):
    setup = {
        "http_median_ms": {"uncached": 30.0, "miss": 31.0, "cached": 1.0},
        "server_median_ms": {"uncached": 29.0, "miss": 30.0, "cached": 0.5},
        "stage_median_ms": {"normalize": 0.0, "embed": 12.0, "retrieve": 10.0, "generate": 1.0},
        "first_over_repeat": 31.0,
        "avoided_per_repeat": {"prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0, "estimated": False},
    }
    load_row = {"requests": 100, "per_second": 1000.0, "p50_ms": 1.0, "p99_ms": 2.0, "errors": 0}
    results = {
        "started": "now", "quick": True, "seconds": 60,
        "concurrency": [{"clients": 1, "bare": load_row, "cached": {**load_row, "p50_ms": 2.0},
                         "postgres_connections_max": 3}],
        "local": setup, "api": {**setup, "first_over_repeat": 1500.0, "calls": {"/v1/embeddings": 2}},
        "local_llm": {"skipped": "not installed"},
        "staleness": {"asks": {"ours": 9, "naive": 9}, "stale": {"ours": 0, "naive": 4}, "lockers": 3, "rounds": 3},
        "miss_overhead": {"miss_overhead_ms": 0.4},
        "growth": [{"chunks": 1000, "hybrid_p50_ms": 6.0, "dense_p50_ms": 4.0, "miss_p50_ms": 20.0}],
        "ingestion": {"documents": 2, "chunks": 90, "ingest_chunks_per_s": 40.0, "embedder_chunks_per_s": 50.0,
                      "ratio": 0.8},
    }  # fmt: skip
    report.write(results, tmp_path)
    text = (tmp_path / "latest.md").read_text()
    assert "| cached p50 at most 1.5x the bare view's (1 client) | 2.00x | **not met** |" in text
    assert "| first ask / repeat, API-shaped, at least 1,000x | 1,500x | met |" in text
    assert "skipped: not installed" in text and "| 1,000 | 6.00 | 4.00 | 1.50x | 20.00 |" in text
    assert "| ingestion at least 0.9x the embedder's own rate | 0.80x | **not met** |" in text
    assert (tmp_path / "latest.png").read_bytes().startswith(b"\x89PNG")
    json.dumps(results)  # what latest.json holds
