"""/metrics: who may read it, and what it counts, in one process and summed over several."""

from __future__ import annotations

import json
import re
import urllib.request

import pytest
from django.test import Client

from tests.chat.factories import handbook
from tests.ragcache.helpers import ask
from tests.servers import site_server

pytestmark = pytest.mark.django_db

TEA = "How hot should the water be for green tea?"


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus's text format (0 when absent)."""
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    for line in text.splitlines():
        found = re.fullmatch(rf"{name}(?:\{{(.*)\}})? (\S+)", line)
        if found and ",".join(sorted((found.group(1) or "").split(","))) == wanted:
            return float(found.group(2))
    return 0.0


def test_only_staff_or_the_token_read_the_metrics(admin_client, settings):
    assert Client().get("/metrics").status_code == 404  # others learn nothing, not even that it exists
    assert admin_client.get("/metrics").status_code == 200
    settings.METRICS_TOKEN = "scraper-secret"
    assert Client().get("/metrics", headers={"Authorization": "Bearer scraper-secret"}).status_code == 200
    assert Client().get("/metrics", headers={"Authorization": "Bearer guess"}).status_code == 404
    assert Client().get("/metrics", headers={"Authorization": "Bearer \u00e9t\u00e9"}).status_code == 404  # not a 500
    settings.METRICS_TOKEN = ""
    assert Client().get("/metrics", headers={"Authorization": "Bearer "}).status_code == 404  # no token: staff only


def test_requests_cache_outcomes_documents_and_queues_are_counted(admin_client):
    handbook()
    before = admin_client.get("/metrics").content.decode()
    client = Client()
    for _ in range(3):
        assert (
            client.post("/api/ask", json.dumps({"question": TEA}), content_type="application/json").status_code == 200
        )
    text = admin_client.get("/metrics").content.decode()

    def grew(name: str, **labels: str) -> float:
        return sample(text, name, **labels) - sample(before, name, **labels)

    assert grew("ragsite_http_requests_total", method="POST", status="200") == 3
    assert grew("ragsite_cache_lookups_total", layer="ans", outcome="hit") == 2
    assert grew("ragsite_cache_lookups_total", layer="ans", outcome="miss") == 1
    assert grew("ragsite_cache_lookup_seconds_count", layer="ret") == 3
    assert sample(text, "ragsite_documents", status="ready") == 8  # the handbook's pages
    assert sample(text, "ragsite_chunks") >= 8
    assert 'ragsite_queue_length{queue="ingest"}' in text and "ragsite_cache_breaker_open 0.0" in text
    assert grew("ragsite_chunks_embedded_total") == 0  # asking embeds no chunk


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_two_web_processes_count_into_one_scrape(test_database_url, redis_url, tmp_path):
    ask(TEA, [handbook().pk])  # cached here: the servers' asks are full hits, no embedding needed
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    env = {
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "METRICS_TOKEN": "t",
        "ASK_RATE": "",
        "EMBEDDING_PROVIDER": "onnx",
        "GENERATOR": "extractive",
    }  # as this process asked: the same keys
    with site_server("gunicorn", database_url=test_database_url, redis_url=redis_url, log=tmp_path / "server.log",
                     **env) as port:  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        for _ in range(40):  # spread over both workers by the kernel
            request = urllib.request.Request(f"{base}/api/ask", data=json.dumps({"question": TEA}).encode(),
                                             headers={"Content-Type": "application/json"})  # fmt: skip
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (loopback)
                assert response.status == 200
        scrape = urllib.request.Request(f"{base}/metrics", headers={"Authorization": "Bearer t"})
        with urllib.request.urlopen(scrape, timeout=30) as response:  # noqa: S310
            text = response.read().decode()
    assert len(list(metrics_dir.glob("counter_*.db"))) >= 2  # both workers counted
    assert sample(text, "ragsite_http_requests_total", method="POST", status="200") == 40
    assert sample(text, "ragsite_cache_lookups_total", layer="ans", outcome="hit") == 40
