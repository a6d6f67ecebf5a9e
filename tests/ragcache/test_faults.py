"""Faults injected on loopback, bounded in count and time: Redis killed, frozen or full,
a worker killed mid-ingestion, a failing language model, and two web processes asked the
same question at once. A cache failure makes the site slower, never wrong and never stuck."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from documents.models import Document
from documents.services import document_replace_source
from tests.chat.factories import handbook
from tests.ragcache.helpers import ask, own_redis, redis
from tests.servers import site_server

BASE_DIR = Path(__file__).resolve().parents[2]
QUESTION = "How hot should the water be for green tea?"
EXPECTED = "water at eighty degrees"


def post_ask(base_url: str, question: str, *, timeout: float = 30) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        f"{base_url}/api/ask", data=json.dumps({"question": question}).encode(),
        headers={"Content-Type": "application/json"}, method="POST",
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (loopback)
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def burst(base_url: str, *, clients: int, asks: int, during: Any) -> list[tuple[int, dict[str, Any]]]:
    """`clients` threads asking `asks` times each; `during()` runs after a quarter of the answers."""
    answered = itertools.count(1)

    def one(_: int) -> tuple[int, dict[str, Any]]:
        result = post_ask(base_url, QUESTION)
        if next(answered) == clients * asks // 4:
            during()
        return result

    with ThreadPoolExecutor(clients) as pool:
        return list(pool.map(one, range(clients * asks), timeout=120))


def until_from_cache(base_url: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status, body = post_ask(base_url, QUESTION)
        if status == 200 and body["trace"]["from_cache"]:
            return True
        time.sleep(0.25)
    return False


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_redis_killed_during_a_burst_costs_no_error_and_hits_resume(live_server, redis_server):
    server = own_redis(redis_server)
    handbook()
    post_ask(live_server.url, QUESTION)
    answers = burst(live_server.url, clients=8, asks=12, during=server.stop)
    server.start()
    assert [status for status, _ in answers].count(200) == len(answers), [a for a in answers if a[0] != 200][:3]
    wrong = [body for _, body in answers if EXPECTED not in body["answer"]]
    assert not wrong, wrong[:2]
    assert any(not body["trace"]["from_cache"] for _, body in answers)  # Redis was gone for some
    assert until_from_cache(live_server.url, 15), "hits did not resume within 15 s of Redis's return"
    assert_no_request_left_running(already=set())


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_redis_frozen_longer_than_the_socket_timeout_leaves_no_ask_stuck(live_server, redis_server):
    server = own_redis(redis_server)
    handbook()
    post_ask(live_server.url, QUESTION)
    already = set(serving_threads())
    os.kill(server.process.pid, signal.SIGSTOP)
    try:
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _: post_ask(live_server.url, QUESTION, timeout=20), range(16)))
    finally:
        os.kill(server.process.pid, signal.SIGCONT)
    assert all(status == 200 and EXPECTED in body["answer"] for status, body in answers), answers[:3]
    assert until_from_cache(live_server.url, 15)
    assert_no_request_left_running(already)


def assert_no_request_left_running(already: set[threading.Thread]) -> None:
    deadline = time.monotonic() + 10
    while set(serving_threads()) - already and time.monotonic() < deadline:
        time.sleep(0.1)
    stuck = set(serving_threads()) - already
    assert not stuck, stacks(stuck)  # no request is left hanging on a dead or frozen connection


def serving_threads() -> list[threading.Thread]:
    """Threads of the site's live server handling a request (not those of the LLM server)."""
    return [
        thread for thread in threading.enumerate()
        if type(getattr(getattr(thread, "_target", None), "__self__", None)).__name__ == "ThreadedWSGIServer"
    ]  # fmt: skip


def stacks(threads: set[threading.Thread]) -> str:
    frames = sys._current_frames()
    return "\n\n".join(
        thread.name + "\n" + "".join(traceback.format_stack(frames[thread.ident])) for thread in threads
        if thread.ident in frames
    )  # fmt: skip


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_full_redis_evicts_cache_keys_only_and_queued_tasks_survive(redis_server):
    own_redis(redis_server)
    from ragsite.celery import app

    collection = handbook()
    queued = [f"document-{n}" for n in range(50)]
    with app.connection_for_write() as broker, broker.Producer() as producer:  # Celery's own queue, no TTL
        for body in queued:
            producer.publish({"body": body}, routing_key="faults-test", declare=[], serializer="json")
    queue_length = redis().llen("faults-test")
    used = int(redis().info("memory")["used_memory"])
    redis().config_set("maxmemory", str(used + 2 * 1024 * 1024))
    try:
        pipe = redis().pipeline(transaction=False)
        for n in range(3000):  # 6 MB of cache entries with TTLs, three times what fits
            pipe.set(f"rc:ans:filler:{n}", b"a1 0 0 0\n" + b"x" * 2000, ex=3600)
        pipe.execute()
        for wording in [QUESTION, "How do I fix a flat tyre?", "When is the tax return due?"]:
            assert ask(wording, [collection.pk]).text  # answered, cached or not
        assert int(redis().info("stats")["evicted_keys"]) > 0
        assert redis().llen("faults-test") == queue_length == len(queued)
    finally:
        redis().config_set("maxmemory", "0")
        redis().delete("faults-test")


@pytest.fixture()
def celery_not_eager() -> Iterator[None]:
    from ragsite.celery import app

    app.conf.task_always_eager = False
    yield
    app.conf.task_always_eager = True


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "ragsite", "worker", "-l", "INFO",
             "--without-gossip", "--without-mingle", "--without-heartbeat"],
            cwd=BASE_DIR, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip


def wait_for(condition: Any, seconds: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {seconds} s\n" + log.read_text()[-3000:]
        time.sleep(0.1)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_ingestion_leaves_the_old_chunks_and_the_retry_finishes(
    openai_embeddings, celery_not_eager, test_database_url, redis_url, services, tmp_path
):
    collection = handbook()
    tea = collection.documents.get(title="tea")
    before = list(tea.chunks.values_list("text", flat=True))
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "ragsite.settings", "DATABASE_URL": test_database_url,
           "REDIS_URL": services["cache"], "CELERY_BROKER_URL": redis_url, "SECRET_KEY": "faults-test-" + "k" * 40,
           "DEBUG": "0", "EMBEDDING_PROVIDER": "openai", "OPENAI_BASE_URL": openai_embeddings.base_url,
           "OPENAI_MAX_RETRIES": "0", "CELERY_VISIBILITY_TIMEOUT": "2"}  # fmt: skip
    log = tmp_path / "worker.log"
    openai_embeddings.route_latency = {"/v1/embeddings": 30.0}  # the first worker is killed while it embeds
    embedded_before = openai_embeddings.calls["/v1/embeddings"]
    first = start_worker(env, log)
    try:
        document_replace_source(document=tea, filename="tea.txt", data=b"Green tea wants water at seventy degrees.")
        embedding = lambda: openai_embeddings.calls["/v1/embeddings"] > embedded_before  # noqa: E731
        wait_for(embedding, 60, "the first worker's embedding", log)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    # The question is embedded here too: at the worker's latency it would race the client's timeout.
    openai_embeddings.route_latency = {}
    tea.refresh_from_db()
    assert tea.status == Document.Status.PROCESSING
    assert list(tea.chunks.values_list("text", flat=True)) == before  # still searchable, unchanged
    assert EXPECTED in ask(QUESTION, [collection.pk]).text

    second = start_worker(env, log)
    try:
        wait_for(lambda: Document.objects.get(pk=tea.pk).status == Document.Status.READY, 90,
                 "the retried ingestion", log)  # fmt: skip
    finally:
        second.terminate()
        second.wait(30)
    tea.refresh_from_db()
    assert tea.ingest_attempts == 2
    assert "seventy degrees" in tea.chunks.get().text


@pytest.mark.django_db
def test_an_ingestion_delivered_too_often_fails_with_the_reason():
    from documents.tasks import ingest_document

    collection = handbook()
    tea = collection.documents.get(title="tea")
    Document.objects.filter(pk=tea.pk).update(ingest_attempts=3)  # three workers died on it
    ingest_document(tea.pk)
    tea.refresh_from_db()
    assert tea.status == Document.Status.FAILED and "interrupted 3 times" in tea.failure_reason
    assert tea.chunks.exists()  # what was searchable still is


@pytest.mark.django_db
@pytest.mark.parametrize("fault", ["error", "timeout"])
def test_a_failing_language_model_caches_nothing_and_a_later_ask_succeeds(openai_chat, settings, fault, client):
    handbook()
    if fault == "error":
        openai_chat.fail_after(0)
    else:
        settings.OPENAI_TIMEOUT_SECONDS = 0.5
        openai_chat.route_latency = {"/v1/chat/completions": 2.0}
    from chat.generators import get_generator

    get_generator.cache_clear()
    failed = client.post("/api/ask", {"question": QUESTION}, content_type="application/json")
    assert failed.status_code in {502, 504} and "language model" in failed.json()["error"]
    assert list(redis().scan_iter(match="rc:ans:*")) == []
    assert list(redis().scan_iter(match="rc:lock:*")) == []
    openai_chat.reset()
    settings.OPENAI_TIMEOUT_SECONDS = 30.0
    get_generator.cache_clear()
    answered = client.post("/api/ask", {"question": QUESTION}, content_type="application/json")
    assert answered.status_code == 200 and answered.json()["answer"]
    assert list(redis().scan_iter(match="rc:ans:*")) != []
    get_generator.cache_clear()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_two_web_processes_make_one_llm_call_for_twenty_identical_asks(
    openai_embeddings, openai_chat, test_database_url, redis_url, services, tmp_path
):
    handbook()
    log = tmp_path / "gunicorn.log"
    with site_server("gunicorn", database_url=test_database_url, redis_url=services["cache"], log=log,
                     CELERY_BROKER_URL=redis_url, GENERATOR="openai",
                     OPENAI_BASE_URL=openai_chat.base_url, OPENAI_MAX_RETRIES="0") as port:  # fmt: skip
        wait_for(lambda: log.read_text().count("Booting worker") >= 2, 60, "both gunicorn workers", log)
        time.sleep(1)  # both workers past their imports
        openai_chat.reset()
        openai_chat.route_latency = {"/v1/chat/completions": 1.0}
        with ThreadPoolExecutor(20) as pool:
            answers = list(pool.map(lambda _: post_ask(f"http://127.0.0.1:{port}", QUESTION), range(20)))
        assert all(status == 200 for status, _ in answers), answers[:3]
        assert len({body["answer"] for _, body in answers}) == 1
        assert openai_chat.calls["/v1/chat/completions"] == 1
        assert openai_chat.calls["/v1/embeddings"] == 1
        pids = {int(line.split("pid: ")[1].rstrip(")\n")) for line in log.read_text().splitlines()
                if "Booting worker with pid" in line}  # fmt: skip
        assert len(pids) == 2
    connection.close()


def test_the_embedded_redis_evicts_only_keys_with_a_ttl(redis_server):
    own_redis(redis_server)
    assert redis().config_get("maxmemory-policy")["maxmemory-policy"] == "volatile-lru"
