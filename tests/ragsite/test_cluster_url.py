"""Redis Cluster by URL (redis+cluster://): parsed into the cache's settings, refused as
Celery's broker, and served by django-redis's DefaultClient on a local three-primary
cluster started from the redis-server binary."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.cache import caches
from django.test import override_settings
from django_redis import get_redis_connection
from django_redis.pool import get_connection_factory
from redis import Redis
from redis.exceptions import RedisError

from ragsite.embedded import EmbeddedCluster, free_port
from ragsite.redis_urls import (
    SOCKET_TIMEOUT,
    CacheCluster,
    ClusterConnectionFactory,
    broker_url,
    cache_settings,
    cluster_parse,
    sentinel_parse,
)

BASE_DIR = Path(__file__).resolve().parents[2]


def test_a_cluster_url_names_its_nodes_and_credentials():
    cluster = cluster_parse("redis+cluster://cache:ab%2Fc%40d@10.0.0.1:7000,10.0.0.2:7001,node3/0")
    assert cluster is not None
    assert cluster.nodes == [("10.0.0.1", 7000), ("10.0.0.2", 7001), ("node3", 6379)]
    assert (cluster.username, cluster.password) == ("cache", "ab/c@d")
    bare = cluster_parse("redis+cluster://127.0.0.1:7000")  # no database: 0, the only one
    assert bare is not None and bare.nodes == [("127.0.0.1", 7000)] and bare.password is None
    assert cluster_parse("redis://127.0.0.1:6379/0") is None
    assert sentinel_parse("redis+cluster://127.0.0.1:7000/0") is None


@pytest.mark.parametrize(
    "url", ["redis+cluster://127.0.0.1:7000/1", "redis+cluster://127.0.0.1:7000,127.0.0.1:7001/15",
            "redis+cluster:///0", "redis+cluster://127.0.0.1:port/0", "redis+cluster://a:7000,,b:7001/0"],
)  # fmt: skip
def test_a_cluster_url_with_another_database_or_no_nodes_is_refused(url: str):
    with pytest.raises(ValueError, match="database 0 only|lists its servers"):
        cluster_parse(url)


def test_celery_is_told_to_use_a_broker_of_its_own():
    with pytest.raises(ValueError, match="Celery cannot use a Redis Cluster.*CELERY_BROKER_URL"):
        broker_url("redis+cluster://127.0.0.1:7000,127.0.0.1:7001/0")


def test_the_cache_settings_use_the_cluster_factory_with_the_same_timeouts():
    url = "redis+cluster://127.0.0.1:7000,127.0.0.1:7001/0"
    entry = cache_settings(url)
    assert entry["LOCATION"] == [url]  # a string would be cut at its commas by DefaultClient
    assert entry["OPTIONS"]["CONNECTION_FACTORY"] == "ragsite.redis_urls.ClusterConnectionFactory"
    assert entry["OPTIONS"]["CLIENT_CLASS"] == "django_redis.client.DefaultClient"
    assert entry["OPTIONS"]["SOCKET_TIMEOUT"] == entry["OPTIONS"]["SOCKET_CONNECT_TIMEOUT"] == SOCKET_TIMEOUT


def test_settings_load_with_a_cluster_cache_when_the_broker_is_named():
    probe = "import django; django.setup(); from django.conf import settings; print(settings.CELERY_BROKER_URL)"
    environment = {k: v for k, v in os.environ.items() if k not in {"CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE"}}
    environment.update(DJANGO_SETTINGS_MODULE="ragsite.settings", DATABASE_URL="postgres://nobody@127.0.0.1:1/none",
                       REDIS_URL="redis+cluster://127.0.0.1:1,127.0.0.1:2/0",
                       SECRET_KEY="cluster-" + "k" * 50)  # fmt: skip

    def load(**env: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-c", probe]
        return subprocess.run(command, cwd=BASE_DIR, env={**environment, **env}, capture_output=True, text=True,
                              timeout=60)  # fmt: skip

    named = load(CELERY_BROKER_URL="redis://127.0.0.1:3/0")
    assert named.returncode == 0, named.stderr
    assert named.stdout.strip() == "redis://127.0.0.1:3/0"
    unnamed = load()
    assert unnamed.returncode != 0
    assert "Celery cannot use a Redis Cluster as its broker" in unnamed.stderr


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedCluster]:
    local = EmbeddedCluster(tmp_path_factory.mktemp("cluster")).start()  # ready within 20 s, or fails
    try:
        yield local
    finally:
        local.stop()


@pytest.fixture()
def cluster_client(cluster: EmbeddedCluster) -> Iterator[CacheCluster]:
    """The client django-redis's factory makes from the cache settings, on an empty cluster."""
    entry = cache_settings(cluster.url)
    client = get_connection_factory(dict(entry["OPTIONS"])).connect(entry["LOCATION"][0])
    client.flushdb()
    yield client
    client.flushdb()


def node_of(cluster: EmbeddedCluster, client: CacheCluster, key: str) -> int:
    """The port of the primary that serves `key`'s slot."""
    port = client.get_node_from_key(key).port
    assert port in cluster.ports
    return int(port)


def test_the_factory_makes_one_cluster_client_per_url_with_the_cache_timeouts(
    cluster: EmbeddedCluster, cluster_client: CacheCluster
):
    assert isinstance(cluster_client, CacheCluster)
    again = ClusterConnectionFactory(dict(cache_settings(cluster.url)["OPTIONS"])).connect(cluster.url)
    assert again is cluster_client
    assert sorted(node.port for node in cluster_client.get_primaries()) == sorted(cluster.ports)
    kwargs = cluster_client.get_default_node().redis_connection.connection_pool.connection_kwargs
    assert kwargs["socket_timeout"] == kwargs["socket_connect_timeout"] == SOCKET_TIMEOUT


def test_keys_with_different_hash_tags_spread_over_all_three_primaries(
    cluster: EmbeddedCluster, cluster_client: CacheCluster
):
    keys = [f"{{tag-{i}}}:entry" for i in range(100)]
    for key in keys:
        cluster_client.set(key, key, ex=60)
    nodes = Counter(node_of(cluster, cluster_client, key) for key in keys)
    assert set(nodes) == set(cluster.ports), nodes
    for port in cluster.ports:  # each primary, asked directly, holds the keys of its slots
        with Redis(port=port, socket_timeout=5) as node:
            slots = {key: int(node.execute_command("CLUSTER KEYSLOT", key)) for key in keys[:10]}
            assert all(slots[key] == cluster_client.keyslot(key) for key in slots)
            assert node.dbsize() == nodes[port]
            mine = [key for key in keys if node_of(cluster, cluster_client, key) == port]
            assert all(node.exists(key) for key in mine)  # one by one: a node refuses a multi-slot EXISTS
    assert len(list(cluster_client.scan_iter(match="{tag-*"))) == 100  # SCAN visits every primary


def test_the_django_cache_api_works_on_the_cluster(cluster: EmbeddedCluster, cluster_client: CacheCluster):
    entry: dict[str, Any] = {**cache_settings(cluster.url), "KEY_PREFIX": "clustertest"}
    with override_settings(CACHES={**settings.CACHES, "cluster": entry}):
        cache: Any = caches["cluster"]
        assert get_redis_connection("cluster") is cluster_client
        cache.set("answer", {"text": "about 80 °C"}, 30)
        assert cache.get("answer") == {"text": "about 80 °C"}
        assert 0 < cache.ttl("answer") <= 30
        assert cache.add("answer", "other") is False
        cache.set("count", 1)
        assert cache.incr("count") == 2  # django-redis's Lua script, on the key's node
        assert cache.delete("answer") is True and cache.get("answer") is None
        cache.set_many({f"rl:{i}": i for i in range(30)}, 30)
        assert cache.get_many([f"rl:{i}" for i in range(30)]) == {f"rl:{i}": i for i in range(30)}  # many slots
        assert len({node_of(cluster, cluster_client, key) for key in cluster_client.scan_iter(match="*rl:*")}) == 3
        assert cache.delete_pattern("rl:*") == 30
        assert cache.get_many([f"rl:{i}" for i in range(30)]) == {}
        cache.clear()  # FLUSHDB on every primary
        for port in cluster.ports:
            with Redis(port=port, socket_timeout=5) as node:
                assert node.dbsize() == 0


def test_a_cluster_that_does_not_answer_is_a_redis_error():
    url = f"redis+cluster://127.0.0.1:{free_port()}/0"  # nothing listens there
    factory = ClusterConnectionFactory(dict(cache_settings(url)["OPTIONS"]))
    with pytest.raises(RedisError, match="no node of the Redis Cluster answered"):
        factory.connect(url)
