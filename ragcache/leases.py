"""Answer locks that live as long as their holder, not as long as a guess.

An answer can take the LLM's whole timeout to generate, so its lock cannot simply be
given that long a TTL: a holder that dies (or a socket timeout after Redis took the SET
NX) would block every asker of the question for it. Instead the lock is taken for a
short LOCK_TTL and this process's keeper thread renews it while the holder works, for
LOCK_WAIT at most. A dead process renews nothing: its locks go within LOCK_TTL.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from django.db import connections
from redis import Redis

from ragcache import client
from ragcache.client import CacheUnavailable
from ragcache.scripts import RENEW, evaluate

logger = logging.getLogger(__name__)


@dataclass
class Lease:
    lock_key: str
    token: str
    ttl: float
    until: float  # monotonic: not renewed after this
    due: float  # monotonic: the next renewal (a third of the TTL after the last)


_leases: dict[str, Lease] = {}  # by lock key
_guard = threading.Lock()
_wake = threading.Condition(_guard)
_keeper: threading.Thread | None = None
_added = False  # a lease came since the keeper last looked: it may need renewing sooner


def keep(lock_key: str, token: str, *, ttl: float, at_most: float) -> None:
    """Renew the lock every third of `ttl` until `drop`, for `at_most` seconds at most."""
    global _keeper, _added
    with _guard:
        now = time.monotonic()
        _leases[lock_key] = Lease(lock_key, token, ttl, until=now + at_most, due=now + ttl / 3)
        _added = True
        if _keeper is None or not _keeper.is_alive():
            _keeper = threading.Thread(target=_renew_forever, name="lock-keeper", daemon=True)
            _keeper.start()
        _wake.notify()


def drop(lock_key: str, token: str) -> None:
    """Stop renewing the lock, if `token` still holds the lease (not a newer holder)."""
    with _guard:
        lease = _leases.get(lock_key)
        if lease is not None and lease.token == token:
            del _leases[lock_key]


def _renew_forever() -> None:
    global _added
    while True:
        with _guard:
            _wake.wait_for(lambda: bool(_leases))
            _added = False
            now = time.monotonic()
            for lease in [lease for lease in _leases.values() if lease.until <= now]:
                del _leases[lease.lock_key]  # held too long: let it expire, waiters have gone on
            due = [lease for lease in _leases.values() if lease.due <= now]
            for lease in due:
                lease.due = now + lease.ttl / 3
            due = [Lease(**vars(lease)) for lease in due]  # copies: renewed outside the guard
            pause = min((lease.due for lease in _leases.values()), default=now + 1) - now
        if due:
            _renew(due)
        with _guard:  # a new lease may be due sooner
            _wake.wait_for(_lease_added, timeout=max(pause, 0.01))


def _lease_added() -> bool:
    return _added


def _renew(leases: list[Lease]) -> None:
    def send(redis: Redis) -> None:
        pipe = redis.pipeline(transaction=False)
        for lease in leases:
            evaluate(pipe, RENEW, 1, lease.lock_key, lease.token, int(lease.ttl * 1000))
        pipe.execute()

    try:
        client.run("ans", send)  # may resync the generation copies first, from the database
    except CacheUnavailable:  # counted by the client; the locks then expire on their own
        pass
    except Exception:  # the database failed in that resync: renew again on the next turn
        logger.exception("Renewing answer locks failed")
    finally:
        connections.close_all()  # this thread's, if the resync opened one: back to the pool
