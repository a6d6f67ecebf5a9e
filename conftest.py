"""Session fixtures: a PostgreSQL with pgvector and a redis-server of the tests' own.

TEST_DATABASE_URL / TEST_REDIS_URL point the suite at existing services instead.
TEST_REDIS_CLUSTER=1 puts the default cache on a local three-primary Redis Cluster; the
Celery broker stays on the single Redis.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import environ
import pytest
from django.conf import settings
from pytest_django.fixtures import Settings

from openai_compat.server import OpenAICompatServer
from ragsite import redis_urls
from ragsite.embedded import EmbeddedCluster, EmbeddedPostgres, EmbeddedRedis


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if url := os.environ.get("TEST_DATABASE_URL"):
        yield url
        return
    server = EmbeddedPostgres(tmp_path_factory.mktemp("postgres") / "data", delete_on_exit=True)
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis | None]:
    if os.environ.get("TEST_REDIS_URL"):
        yield None
        return
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), persist=False).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_url(redis_server: EmbeddedRedis | None) -> str:
    return redis_server.url if redis_server else os.environ["TEST_REDIS_URL"]


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedCluster | None]:
    """The cache's Redis Cluster when TEST_REDIS_CLUSTER=1, else None."""
    if os.environ.get("TEST_REDIS_CLUSTER") != "1":
        yield None
        return
    cluster = EmbeddedCluster(tmp_path_factory.mktemp("redis-cluster")).start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session", autouse=True)
def services(postgres_url: str, redis_url: str, redis_cluster: EmbeddedCluster | None) -> dict[str, str]:
    # Django builds its connections lazily from these very dicts, so updating them in
    # place before the first query points every connection at the tests' services.
    database = environ.Env.db_url_config(postgres_url)
    settings.DATABASES["default"].update({k: v for k, v in database.items() if k != "ENGINE"})
    settings.CACHES["default"]["LOCATION"] = redis_url
    if redis_cluster:  # the cache only (its KEY_PREFIX stays): Celery cannot use a cluster
        settings.CACHES["default"].update(redis_urls.cache_settings(redis_cluster.url))
    from ragsite.celery import app

    app.conf.broker_url = redis_url
    return {"database": postgres_url, "redis": redis_url, "cache": redis_cluster.url if redis_cluster else redis_url}


@pytest.fixture(autouse=True)
def empty_cache(services: dict[str, str]) -> None:
    """Every test starts with no cache entry of the app, no run-time switch, no scope listed,
    no worker's heartbeat, a closed circuit, and no question counted by the rate limit."""
    from django.core.cache import cache
    from django_redis import get_redis_connection

    from ragcache import catalog, census, keys
    from ragcache.client import breaker
    from ragcache.invalidation import flush_all
    from ragcache.switches import switches_reset

    breaker.reset()
    with census._running:  # a census an earlier test started ends first: its count must not land in this test's Redis
        pass
    flush_all()
    switches_reset()
    get_redis_connection("default").delete(keys.workers(), keys.scopes())
    catalog.forget()
    cache.delete_pattern("rl:*")  # type: ignore[attr-defined]  # django-redis


@pytest.fixture(scope="session")
def django_db_modify_db_settings(services: dict[str, str]) -> None:
    pass


@pytest.fixture(scope="session")
def test_database_url(services: dict[str, str], django_db_setup: None) -> str:
    """URL of the test database Django created, for processes the tests start."""
    db = settings.DATABASES["default"]
    host = db.get("OPTIONS", {}).get("host") or db["HOST"]
    from urllib.parse import quote

    port = f":{db['PORT']}" if db.get("PORT") else ""
    if host.startswith("/"):
        return f"postgres://{db['USER']}@/{db['NAME']}?host={quote(host, safe='')}"
    return f"postgres://{db['USER']}:{db['PASSWORD']}@{host}{port}/{db['NAME']}"


@pytest.fixture(scope="session")
def openai_server() -> Iterator[OpenAICompatServer]:
    server = OpenAICompatServer().start()
    yield server
    server.stop()


@pytest.fixture()
def openai_embeddings(settings: Settings, openai_server: OpenAICompatServer) -> Iterator[OpenAICompatServer]:
    """Embed through the project's OpenAI-compatible server for this test."""
    from documents.embedding import get_embedder

    openai_server.reset()
    settings.EMBEDDING_PROVIDER = "openai"
    settings.OPENAI_BASE_URL = openai_server.base_url
    settings.OPENAI_MAX_RETRIES = 0
    get_embedder.cache_clear()
    yield openai_server
    get_embedder.cache_clear()
    openai_server.reset()


@pytest.fixture(scope="session")
def embedder():
    """The default embedder (MiniLM on onnxruntime), loaded once for the whole session."""
    from documents.embedding.onnx import OnnxEmbedder

    return OnnxEmbedder()


@pytest.fixture()
def openai_chat(settings: Settings, openai_server: OpenAICompatServer) -> Iterator[OpenAICompatServer]:
    """Generate answers through the project's OpenAI-compatible server for this test."""
    openai_server.reset()
    settings.GENERATOR = "openai"
    settings.OPENAI_BASE_URL = openai_server.base_url
    settings.OPENAI_CHAT_MODEL = "gpt-4o-mini"
    settings.OPENAI_MAX_RETRIES = 0
    yield openai_server
    openai_server.reset()
