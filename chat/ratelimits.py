"""How many questions one caller may ask: per user when signed in, per address otherwise
(ASK_RATE, e.g. "30/m"), counted in Redis by django-ratelimit. When Redis cannot count,
the ask goes ahead: a limiter must not take the site down with the cache. Such asks are
counted here and logged."""

from __future__ import annotations

import logging
import threading

from django.conf import settings
from django.http import HttpRequest
from django_ratelimit.core import get_usage
from django_redis.exceptions import ConnectionInterrupted
from redis.exceptions import RedisError

from ragcache.client import breaker

logger = logging.getLogger(__name__)
unchecked = 0  # asks let through since the process started because Redis could not count them
_lock = threading.Lock()


def ask_wait_seconds(request: HttpRequest) -> int | None:
    """Seconds this caller must wait before asking again, or None: the ask may go ahead."""
    if not settings.ASK_RATE or getattr(request.user, "is_staff", False):
        return None
    if breaker.is_open:  # Redis failed just now: do not wait for its timeout on every ask
        _let_through("the cache's circuit is open")
        return None
    try:
        # The user's id, or the address (an IPv6 one by its /64, so one host cannot rotate
        # through its own block); RATELIMIT_IP_META_KEY says where a proxy puts it.
        usage = get_usage(request, group="ask", key="user_or_ip", rate=settings.ASK_RATE, increment=True)
    except (ConnectionInterrupted, RedisError, OSError) as exc:
        _let_through(str(exc))
        return None
    if usage is None:
        return None
    if usage["limit"] == 0:  # the count could not be read or written
        _let_through("Redis did not count the ask")
        return None
    return max(1, int(usage["time_left"])) if usage["should_limit"] else None


def _let_through(reason: str) -> None:
    global unchecked
    with _lock:
        unchecked += 1
    logger.warning("An ask went unchecked by the rate limit: %s", reason)
