"""REDIS_URL, for one Redis, Redis Sentinel or Redis Cluster, as django-redis and Celery each want it.

    redis://[:password@]host:6379/0                       one Redis
    sentinel://[:password@]host1:26379,host2:26379/mymaster/0
                                                          the primary that Sentinel names
                                                          `mymaster`, found through any of
                                                          the sentinels listed; database 0
    redis+cluster://[user:password@]host1:7000,host2:7001/0
                                                          a Redis Cluster, found through any
                                                          of the nodes listed (database 0,
                                                          the only one a cluster has)

With Sentinel, the cache (django-redis's SentinelClient) and the broker (Celery's sentinel
transport) ask the sentinels for the current primary, and again after a failover.

A Redis Cluster serves the cache only: django-redis's DefaultClient on a redis-py
RedisCluster, through ClusterConnectionFactory below. Celery cannot use a cluster as its
broker, so CELERY_BROKER_URL must then name one Redis or a Sentinel.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from django_redis.pool import ConnectionFactory
from redis.cluster import ClusterNode, RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException

SOCKET_TIMEOUT = 0.25  # seconds: a Redis that does not answer is a miss, not a wait


@dataclass(frozen=True)
class SentinelURL:
    sentinels: list[tuple[str, int]]
    service: str  # the primary's name in the sentinels' configuration
    db: int
    username: str | None
    password: str | None

    def credentials(self) -> str:
        """As they go back into a URL: "user:password@", ":password@" or nothing."""
        if not (self.username or self.password):
            return ""
        return f"{quote(self.username or '', safe='')}:{quote(self.password or '', safe='')}@"


def sentinel_parse(url: str) -> SentinelURL | None:
    """The parts of a sentinel:// URL, or None for a URL of one Redis."""
    parts = urlsplit(url)
    if parts.scheme != "sentinel":
        return None
    username, password, sentinels = _servers(
        parts.netloc, default_port=26379, example="sentinel://host:26379/mymaster/0"
    )
    service, _, db = parts.path.strip("/").partition("/")
    if not service or not sentinels:
        raise ValueError("A sentinel URL names its sentinels and its service: sentinel://host:26379/mymaster/0")
    return SentinelURL(sentinels=sentinels, service=service, db=int(db or 0), username=username or None,
                       password=password or None)  # fmt: skip


@dataclass(frozen=True)
class ClusterURL:
    nodes: list[tuple[str, int]]  # any of them; the client learns the others from them
    username: str | None
    password: str | None


def cluster_parse(url: str) -> ClusterURL | None:
    """The parts of a redis+cluster:// URL, or None for any other URL."""
    parts = urlsplit(url)
    if parts.scheme != "redis+cluster":
        return None
    username, password, nodes = _servers(
        parts.netloc, default_port=6379, example="redis+cluster://host1:7000,host2:7001/0"
    )
    if parts.path.strip("/") not in ("", "0"):
        raise ValueError(f"A Redis Cluster has database 0 only, not {parts.path.strip('/')!r}")
    return ClusterURL(nodes=nodes, username=username or None, password=password or None)


def _servers(netloc: str, *, default_port: int, example: str) -> tuple[str, str, list[tuple[str, int]]]:
    """The user name, password and (host, port) list of a URL that lists several servers."""
    credentials, _, hosts = netloc.rpartition("@")
    username, _, password = (unquote(part) for part in credentials.partition(":"))
    servers = []
    for host in hosts.split(","):
        name, _, port = host.partition(":")
        if not name or (port and not port.isdigit()):
            raise ValueError(f"The URL lists its servers, as in {example}, not {host!r}")
        servers.append((name, int(port or default_port)))
    return username, password, servers


class CacheCluster(RedisCluster):
    """A RedisCluster whose MGET may name keys of several slots, as a cache's get_many
    does: one MGET per slot (each atomic), where RedisCluster refuses the call."""

    def mget(self, keys: Any, *args: Any) -> list[Any]:
        return self.mget_nonatomic(keys, *args)


class ClusterConnectionFactory(ConnectionFactory):
    """django-redis's connection factory for a redis+cluster:// LOCATION: one redis-py
    RedisCluster per URL for the whole process.

    django-redis asks its factory to connect() for every new client (one per cache alias
    and thread); a RedisCluster keeps a connection pool per node and the map of slots
    to nodes, which are worth sharing as the default factory shares its pools."""

    _clusters: dict[str, CacheCluster] = {}
    _lock = threading.Lock()

    def connect(self, url: str) -> CacheCluster:
        with self._lock:
            if url not in self._clusters:
                self._clusters[url] = self._cluster(url)
            return self._clusters[url]

    def _cluster(self, url: str) -> CacheCluster:
        cluster = cluster_parse(url)
        if cluster is None:
            raise ValueError(f"ClusterConnectionFactory needs a redis+cluster:// URL, not {urlsplit(url).scheme}://")
        params = self.make_connection_params(url)  # the socket timeouts of OPTIONS
        timeouts = {key: params[key] for key in ("socket_timeout", "socket_connect_timeout") if key in params}
        try:  # RedisCluster asks the nodes for the slot map at once, here
            return CacheCluster(
                startup_nodes=[ClusterNode(host, port) for host, port in cluster.nodes],
                username=cluster.username, password=cluster.password, **timeouts,
            )  # fmt: skip
        except RedisClusterException as exc:  # not a RedisError: callers that fail open would not catch it
            raise RedisConnectionError(f"no node of the Redis Cluster answered: {exc}") from exc

    def disconnect(self, connection: RedisCluster) -> None:
        # What the default factory does to its pool: close the connections, keep the client.
        connection.disconnect_connection_pools()


def cache_settings(url: str) -> dict[str, Any]:
    """The default cache's CACHES entry (without its KEY_PREFIX)."""
    options: dict[str, Any] = {
        "CLIENT_CLASS": "django_redis.client.DefaultClient",
        "SERIALIZER": "django_redis.serializers.json.JSONSerializer",
        "SOCKET_CONNECT_TIMEOUT": SOCKET_TIMEOUT,
        "SOCKET_TIMEOUT": SOCKET_TIMEOUT,
    }
    if cluster_parse(url):
        options["CONNECTION_FACTORY"] = "ragsite.redis_urls.ClusterConnectionFactory"
        # A list of one: DefaultClient splits a LOCATION string at its commas (into a
        # primary and replicas), which would cut the URL between the cluster's nodes.
        return {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": [url], "OPTIONS": options}
    sentinel = sentinel_parse(url)
    if sentinel is None:
        return {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": url, "OPTIONS": options}
    options |= {
        "CLIENT_CLASS": "django_redis.client.SentinelClient",
        "CONNECTION_FACTORY": "django_redis.pool.SentinelConnectionFactory",
        "CONNECTION_POOL_CLASS": "redis.sentinel.SentinelConnectionPool",
        "SENTINELS": sentinel.sentinels,
        "SENTINEL_KWARGS": {"socket_timeout": SOCKET_TIMEOUT, "socket_connect_timeout": SOCKET_TIMEOUT},
    }
    location = f"redis://{sentinel.credentials()}{sentinel.service}/{sentinel.db}"
    return {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": location, "OPTIONS": options}


def broker_url(url: str) -> str:
    """Celery's broker URL for the same Redis."""
    if cluster_parse(url):
        raise ValueError(
            "Celery cannot use a Redis Cluster as its broker: with a redis+cluster:// REDIS_URL, "
            "set CELERY_BROKER_URL to one Redis (redis://) or a Sentinel (sentinel://)"
        )
    sentinel = sentinel_parse(url)
    if sentinel is None:
        return url
    credentials = sentinel.credentials()
    return ";".join(f"sentinel://{credentials}{host}:{port}/{sentinel.db}" for host, port in sentinel.sentinels)


def broker_transport_options(url: str) -> dict[str, Any]:
    """What Celery's sentinel transport needs besides the URL (nothing for one Redis)."""
    sentinel = sentinel_parse(url)
    return {"master_name": sentinel.service} if sentinel else {}
