"""/readyz: ready, degraded or unavailable, as the database, Redis and the workers come
and go; each service cut for real, behind a gate, while it keeps running for the suite."""

from __future__ import annotations

import contextlib
import glob
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from urllib.parse import parse_qs, urlparse

import pytest
from django.test import Client

from chat.services import DATABASE_UNAVAILABLE
from ragcache.client import CacheUnavailable
from ragcache.invalidation import flush_all
from ragsite import health
from tests.chat.factories import handbook
from tests.ragcache.helpers import ask
from tests.servers import Gate, site_server

pytestmark = pytest.mark.django_db

TEA = "How hot should the water be for green tea?"


def test_a_worker_seen_recently_makes_the_site_ready(settings):
    health.worker_beat("test-worker")
    response = Client().get("/readyz")
    assert response.status_code == 200 and response["Cache-Control"].startswith("max-age=0")
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "redis": "ok", "worker": "ok"}}
    flush_all()  # the panel's "flush everything": heartbeats are health, not cache
    assert health.worker_last_seen() is not None


def test_without_a_worker_the_site_is_unavailable(settings):
    response = Client().get("/readyz")
    assert response.status_code == 503 and response.json()["checks"]["worker"] == "none seen"
    settings.WORKER_SEEN_SECONDS = 0.2
    health.worker_beat("test-worker")
    time.sleep(0.4)
    response = Client().get("/readyz")
    assert response.status_code == 503 and response.json()["checks"]["worker"].startswith("last seen")


def api_ask(port: int, question: str) -> tuple[int, object]:
    """The status, and whether the answer came from the cache (or the error)."""
    body = json.dumps({"question": question}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/ask", data=body,
                                     headers={"Content-Type": "application/json"})  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (loopback)
            return response.status, json.loads(response.read())["trace"]["from_cache"]
    except urllib.error.HTTPError as error:
        raw = error.read()
        try:
            return error.code, json.loads(raw)["error"]
        except ValueError:
            return error.code, raw.decode(errors="replace")[-3000:]


@contextlib.contextmanager
def beating() -> Iterator[None]:
    """A worker's heartbeat, twice a second, as a live worker writes it."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.is_set():
            with contextlib.suppress(CacheUnavailable):
                health.worker_beat("test-worker")
            stop.wait(0.5)

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(5)


def readyz(port: int) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=10) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def until(port: int, status: str, seconds: float = 15) -> dict:
    """The readiness report once it says `status` (services take a moment to come back)."""
    deadline = time.monotonic() + seconds
    while True:
        code, found = readyz(port)
        if found["status"] == status or time.monotonic() > deadline:
            assert found["status"] == status, found
            assert code == (503 if status == "unavailable" else 200)
            return found
        time.sleep(0.3)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_readiness_follows_the_database_redis_and_the_workers_going_and_coming_back(
    test_database_url, redis_url, tmp_path
):
    database, redis_address = urlparse(test_database_url), urlparse(redis_url)
    if socket_dir := parse_qs(database.query).get("host"):  # the embedded PostgreSQL listens on a socket
        [database_target] = [path for path in glob.glob(f"{socket_dir[0]}/.s.PGSQL.*") if not path.endswith(".lock")]
    else:
        database_target = (database.hostname, database.port or 5432)
    database_gate, redis_gate = Gate(database_target), Gate((redis_address.hostname, redis_address.port))
    credentials = database.netloc.rsplit("@", 1)[0]
    database_url = f"postgres://{credentials}@127.0.0.1:{database_gate.port}{database.path}"
    gated_redis = redis_url.replace(f":{redis_address.port}", f":{redis_gate.port}", 1)
    collection = handbook()
    try:
        # One web worker: each has its own circuit breaker, and the test follows one.
        with site_server("gunicorn", database_url=database_url, redis_url=gated_redis, log=tmp_path / "server.log",
                         workers=1,
                         WORKER_SEEN_SECONDS="3", DATABASE_POOL_TIMEOUT="2", EMBEDDING_PROVIDER="onnx",
                         METRICS_TOKEN="t", GENERATOR="extractive") as port:  # fmt: skip
            with beating():
                until(port, "ok")
                ask(TEA, [collection.pk])  # cached while everything runs
                database_gate.shut()
                assert until(port, "unavailable")["checks"]["database"].startswith("unreachable")
                assert api_ask(port, TEA) == (200, True)  # a fully cached answer needs no database
                assert api_ask(port, "A question nobody asked before?") == (503, DATABASE_UNAVAILABLE)
                scrape = urllib.request.Request(
                    f"http://127.0.0.1:{port}/metrics", headers={"Authorization": "Bearer t"}
                )
                with urllib.request.urlopen(scrape, timeout=30) as response:  # noqa: S310 (loopback)
                    assert b"ragsite_http_requests_total" in response.read()  # the counters, without the database
                database_gate.open()
                until(port, "ok")
                redis_gate.shut()
                found = until(port, "degraded")  # answers still come, without the speed layer
                assert found["checks"]["worker"].startswith("unknown")
                assert str(redis_gate.port) not in found["checks"]["redis"]  # no address on a public page
                database_gate.shut()  # both gone; then Redis comes back first
                until(port, "unavailable")
                redis_gate.open()
                # The copies of the generations cannot be rewritten from the database yet: until
                # they are, the cache is not used (it might serve an answer from before a change).
                resync = "unreachable: the database did not answer to resync the copies"
                seen: set[str] = set()
                deadline = time.monotonic() + 15
                while resync not in seen and time.monotonic() < deadline:
                    code, found = readyz(port)
                    assert (code, found["status"]) == (503, "unavailable"), found  # never a 500
                    seen.add(found["checks"]["redis"])
                assert resync in seen, seen
                database_gate.open()
                until(port, "ok")
            time.sleep(3.5)  # no heartbeat for longer than WORKER_SEEN_SECONDS: every worker is gone
            assert until(port, "unavailable")["checks"]["worker"].startswith("last seen")
            health.worker_beat("test-worker")
            until(port, "ok")
    finally:
        database_gate.close()
        redis_gate.close()
