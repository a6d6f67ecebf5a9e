"""The sweep: every few seconds, each web and worker process publishes to Redis what was
committed but never reached it (documents.services.unpublished_publish). It runs off the
request path, on a daemon thread, so a lost publish is repaired within seconds of Redis
answering again, whichever process lost it."""

from __future__ import annotations

import logging
import threading

from django.conf import settings
from django.db import close_old_connections, connection

from ragcache.client import breaker

logger = logging.getLogger(__name__)
_started = threading.Event()


def start(*, interval: float | None = None) -> None:
    """Start this process's sweep (once; later calls do nothing)."""
    if _started.is_set():
        return
    _started.set()
    seconds = settings.PUBLISH_SWEEP_SECONDS if interval is None else interval
    threading.Thread(target=_loop, args=(seconds,), name="publish-sweep", daemon=True).start()


def _loop(seconds: float) -> None:
    stop = threading.Event()  # never set: the thread ends with the process
    while not stop.wait(seconds):
        sweep()


def sweep() -> int:
    """One pass; how many generations and catalogs it published."""
    from documents.services import unpublished_publish  # needs the apps loaded

    if breaker.is_open:  # Redis failed just now: try again on the next pass
        return 0
    close_old_connections()
    try:
        published = unpublished_publish()
    except Exception:  # the database may be away too; the next pass tries again
        logger.exception("The publish sweep failed")
        return 0
    finally:
        connection.close()  # back to the pool between passes
    if published:
        logger.warning("Published %d change(s) whose publish on commit had failed", published)
    return published
