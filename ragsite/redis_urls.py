"""REDIS_URL, for one Redis or for Redis Sentinel, as django-redis and Celery each want it.

    redis://[:password@]host:6379/0                       one Redis
    sentinel://[:password@]host1:26379,host2:26379/mymaster/0
                                                          the primary that Sentinel names
                                                          `mymaster`, found through any of
                                                          the sentinels listed; database 0

With Sentinel, the cache (django-redis's SentinelClient) and the broker (Celery's sentinel
transport) ask the sentinels for the current primary, and again after a failover.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlsplit

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
    credentials, _, hosts = parts.netloc.rpartition("@")
    username, _, password = (unquote(part) for part in credentials.partition(":"))
    sentinels = []
    for host in hosts.split(","):
        name, _, port = host.partition(":")
        sentinels.append((name, int(port or 26379)))
    service, _, db = parts.path.strip("/").partition("/")
    if not service or not sentinels:
        raise ValueError("A sentinel URL names its sentinels and its service: sentinel://host:26379/mymaster/0")
    return SentinelURL(sentinels=sentinels, service=service, db=int(db or 0), username=username or None,
                       password=password or None)  # fmt: skip


def cache_settings(url: str) -> dict[str, Any]:
    """The default cache's CACHES entry (without its KEY_PREFIX)."""
    options: dict[str, Any] = {
        "CLIENT_CLASS": "django_redis.client.DefaultClient",
        "SERIALIZER": "django_redis.serializers.json.JSONSerializer",
        "SOCKET_CONNECT_TIMEOUT": SOCKET_TIMEOUT,
        "SOCKET_TIMEOUT": SOCKET_TIMEOUT,
    }
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
    sentinel = sentinel_parse(url)
    if sentinel is None:
        return url
    credentials = sentinel.credentials()
    return ";".join(f"sentinel://{credentials}{host}:{port}/{sentinel.db}" for host, port in sentinel.sentinels)


def broker_transport_options(url: str) -> dict[str, Any]:
    """What Celery's sentinel transport needs besides the URL (nothing for one Redis)."""
    sentinel = sentinel_parse(url)
    return {"master_name": sentinel.service} if sentinel else {}
