"""The overview: its numbers against a scripted workload, the key census, Redis down and back,
and the run-time switches as another process sees them."""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.contrib.admin.models import LogEntry
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from ragcache import census, keys, stats
from ragcache.client import breaker
from ragcache.layers import Policy
from tests.chat.factories import handbook
from tests.ragcache.helpers import app_keys, ask, outcomes, overrides, redis, round_trips

BASE_DIR = Path(__file__).resolve().parents[2]
TEA = "How hot should the water be for green tea?"
TYRE = "How do I fix a flat tyre?"
REGION = {"HX-Request": "true", "HX-Target": "overview"}


def cell(page: str, layer: str, metric: str) -> str:
    row = re.search(rf'<tr id="layer-{layer}">(.*?)</tr>', page, re.S)
    assert row, f"no row for {layer}"
    found = re.search(rf'data-metric="{metric}">([^<]*)<', row.group(1))
    assert found, f"no {metric} for {layer}"
    return html.unescape(found.group(1)).strip()


def overview(client, **headers: str) -> str:
    response = client.get(reverse("cachepanel:overview"), headers=headers)
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.django_db
def test_the_overview_shows_what_a_scripted_workload_did(admin_client):
    collection = handbook()
    for question in [TEA, TEA, TYRE, TEA, TYRE]:  # two cold questions, three repeats
        ask(question, [collection.pk])
    ask(TEA, [collection.pk], cache_policy=Policy(read=False, write=False))  # one bypass of every layer
    page = overview(admin_client, **REGION)
    assert '<div class="breadcrumbs">' not in page  # the region alone
    expected = {
        "ret": {"hit": "3", "miss": "2", "bypass": "1", "error": "0", "ratio-5m": "60.0%", "ratio-1d": "60.0%"},
        "ans": {"hit": "3", "miss": "2", "bypass": "1", "error": "0", "ratio-5m": "60.0%", "ratio-1h": "60.0%"},
        "emb": {"hit": "0", "miss": "2", "bypass": "1", "ratio-5m": "0.0%"},
        "sem": {"hit": "0", "miss": "2", "bypass": "1", "ratio-5m": "0.0%"},  # on by default: each cold question
    }
    for layer, metrics in expected.items():
        for metric, value in metrics.items():
            assert cell(page, layer, metric) == value, (layer, metric)
    day = stats.summary()["windows"]["1d"]  # and every count is the statistics' own
    for layer in ("emb", "ret", "ans", "sem"):
        for metric in ("hit", "miss", "bypass", "error"):
            assert cell(page, layer, metric) == f"{day[layer][metric]:,.0f}", (layer, metric)
    assert cell(page, "ans", "saved_ms") != "0.0 ms"  # three answers' generation time, saved
    assert "ans</code> Answers: 3 hits, 2 misses" in page  # the chart of the last hour


@pytest.mark.django_db
def test_key_counts_come_from_a_census_taken_in_the_background(admin_client):
    collection = handbook()
    for question in [TEA, TYRE, "When is the tax return due?"]:
        ask(question, [collection.pk])
    page = overview(admin_client, **REGION)
    assert "Counting the keys" in page and cell(page, "ans", "keys") == "—"
    deadline = time.monotonic() + 10
    while not redis().exists(keys.census()) and time.monotonic() < deadline:
        time.sleep(0.05)
    page = overview(admin_client, **REGION)
    for layer in ("emb", "ret", "ans", "sem"):
        assert cell(page, layer, "keys") == str(len(list(redis().scan_iter(match=f"rc:{layer}:*"))))
    assert cell(page, "ans", "keys") == "3"
    assert f"over {len(app_keys()) - 1} keys of the app" in page  # all but the census's own


@pytest.mark.django_db
def test_an_overview_refresh_reads_the_database_once_and_never_scans(admin_client, django_assert_max_num_queries):
    collection = handbook()
    ask(TEA, [collection.pk])
    census.take(redis())
    with CaptureQueriesContext(connection) as queries, round_trips() as commands:
        overview(admin_client, **REGION)
    assert len(queries) <= 3, [q["sql"] for q in queries]  # session, user, collections
    # Statistics (the scopes listed, then a script per scope: the asker's, and that of asks
    # without one), the census's result, INFO, the generation copies (the scopes listed,
    # then each one's), the switches, the last warming's report.
    assert sorted(commands) == ["EVAL", "EVAL", "GET", "GET", "HGETALL", "HGETALL", "HGETALL", "HMGET", "INFO", "TTL"]
    with django_assert_max_num_queries(4):  # and the admin's app list
        overview(admin_client)


@pytest.mark.django_db
def test_the_semantic_histogram_shows_hits_refusals_and_misses_around_the_threshold(admin_client, settings):
    settings.RAGCACHE = {**settings.RAGCACHE, "ENABLED": {**settings.RAGCACHE["ENABLED"], "sem": True},
                         "SEM_THRESHOLD": 0.9}  # fmt: skip
    collection = handbook()
    ask(TEA, [collection.pk])
    assert outcomes(ask("How hot should water be for brewing green tea?", [collection.pk]))["sem"] == "hit"
    assert outcomes(ask(TYRE, [collection.pk]))["sem"] == "miss"
    ask("When is the annual tax return due?", [collection.pk])
    refused = ask("When is the annual tax return not due?", [collection.pk])
    assert outcomes(refused)["sem"] == "miss" and refused.trace["cache"]["sem"]["refused"]
    page = " ".join(overview(admin_client, **REGION).split())
    assert "1 served from a similar question" in page and "1 refused by a check" in page
    assert "2 not close enough, in the last day; threshold 0.90" in page
    assert re.search(r"<title>0\.9\d to 0\.\d\d: [01] served, 1 refused by a check, 0 not served</title>", page)
    assert 'class="cp-refused"' in page
    assert re.search(r'<line class="cp-threshold" x1="410.0"', page)  # where the 0.90 bin starts


@pytest.mark.slow
@pytest.mark.django_db
def test_with_redis_down_the_panel_says_so_and_recovers_by_itself(admin_client, redis_server, settings):
    if redis_server is None:
        pytest.skip("stopping Redis needs the suite's own redis-server (TEST_REDIS_URL is set)")
    settings.RAGCACHE = {**settings.RAGCACHE, "BREAKER_OPEN_SECONDS": 0.5}
    collection = handbook()
    ask(TEA, [collection.pk])
    redis_server.stop()
    try:
        page = overview(admin_client)
        assert "Redis is unreachable</strong> since" in page and "nothing is lost" in page
        assert re.search(r'<div id="controls" hx-get="/admin/cache/" hx-trigger="every 5s"', page)
        assert "Handbook" in page  # the database's side still shows
        assert "Redis is unreachable" in overview(admin_client, **REGION)
        keys_page = admin_client.get(reverse("cachepanel:keys"))
        assert keys_page.status_code == 200 and b"Redis is unreachable" in keys_page.content
        assert b'hx-trigger="cache-changed from:body, every 5s"' in keys_page.content  # it keeps trying
        document = collection.documents.first()
        for url, data in [
            ("cachepanel:flush", {"target": "all", "confirmed": "yes"}),
            ("cachepanel:flush", {"target": "ans", "confirmed": "yes"}),
            ("cachepanel:flush", {"target": "document", "document_id": document.pk, "confirmed": "yes"}),
            ("cachepanel:key_delete", {"key": "rc:ans:x"}),
            ("cachepanel:key_expire", {"key": "rc:ans:x", "seconds": 5, "mode": "set"}),
            ("cachepanel:switches", {"ret": "on", "sem_threshold": "0.9"}),
            ("cachepanel:republish", {}),
        ]:
            response = admin_client.post(reverse(url), data, headers={"HX-Request": "true"})
            assert response.status_code == 503 and b"nothing was changed" in response.content, (url, data)
        assert not LogEntry.objects.exists()  # nothing done, nothing logged
        assert ask(TEA, [collection.pk]).text  # the site still answers
    finally:
        redis_server.start()
    time.sleep(0.6)  # the circuit closes
    page = overview(admin_client, **REGION)
    assert "Redis is unreachable" not in page and 'id="layer-ans"' in page
    controls = overview(admin_client, **{**REGION, "HX-Target": "controls"})
    assert "Save switches" in controls and "every 5s" not in controls  # back, and done polling
    keys_page = admin_client.get(reverse("cachepanel:keys"), headers={"HX-Request": "true", "HX-Target": "key-rows"})
    assert b"Redis is unreachable" not in keys_page.content and b"every 5s" not in keys_page.content
    assert "Last Redis error: ConnectionError" in page
    assert breaker.failing_since is None


ASKER = """
import json, sys
import django
django.setup()
from chat.pipeline import answer
for line in sys.stdin:
    collection_id, question = line.rstrip("\\n").split("\\t")
    result = answer(question=question, collection_ids=[int(collection_id)])
    print(json.dumps({layer: entry["outcome"] for layer, entry in result.trace["cache"].items()}), flush=True)
"""


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_switching_a_layer_off_in_the_panel_reaches_another_process_at_its_next_ask(
    admin_client, test_database_url, redis_url
):
    collection = handbook()
    ask(TEA, [collection.pk])
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "ragsite.settings", "DATABASE_URL": test_database_url,
           "REDIS_URL": redis_url, "SECRET_KEY": "switch-test-" + "k" * 40, "DEBUG": "0"}  # fmt: skip
    other = subprocess.Popen(
        [sys.executable, "-c", ASKER], cwd=BASE_DIR, env=env, text=True,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )  # fmt: skip

    def ask_there() -> dict[str, str]:
        assert other.stdin and other.stdout
        other.stdin.write(f"{collection.pk}\t{TEA}\n")
        other.stdin.flush()
        return dict(__import__("json").loads(other.stdout.readline()))

    def switch(**layers: bool) -> None:
        data = {layer: "on" for layer, on in layers.items() if on} | {"sem_threshold": "0.7", "check_words": "on"}
        assert admin_client.post(reverse("cachepanel:switches"), data).status_code == 302

    try:
        assert ask_there()["ans"] == "hit"
        switch(emb=True, ret=True, ans=False, sem=True)
        assert ask_there()["ans"] == "bypass"  # the very next ask, with no wait
        switch(emb=True, ret=True, ans=True, sem=True)
        assert ask_there()["ans"] == "hit"
    finally:
        other.terminate()
        other.wait(10)
    assert overrides() == {}  # every switch back at its default: no override kept
