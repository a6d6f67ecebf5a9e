"""Background work of the speed layer, on the `cache` queue: warming."""

from __future__ import annotations

import contextlib
import logging
import time

from celery import shared_task

from chat.pipeline import answer
from ragcache import popular
from ragcache.client import CacheUnavailable
from ragcache.conf import conf
from ragcache.layers import Policy

logger = logging.getLogger(__name__)
# Warming's own asks read and fill the cache like any other, but do not count as asked.
WARMING_POLICY = Policy(counted=False)


@shared_task(acks_late=True, ignore_result=True)
def popular_warm(collection_ids: list[int]) -> int:
    """Answer again, at the collections' new generations, their most asked questions of
    late, so the first reader after a change finds them cached. How many were asked."""
    started = time.perf_counter()
    limit = conf()["WARMING_QUESTIONS"]
    try:
        asked = popular.questions_top(collection_ids, limit)
    except CacheUnavailable:
        return 0  # without Redis there is nothing to warm
    for ids, question in asked:
        try:
            answer(question=question, collection_ids=ids, cache_policy=WARMING_POLICY)
        except Exception:  # one question failing must not stop the others
            logger.exception("Warming %r failed", question)
    seconds = time.perf_counter() - started
    with contextlib.suppress(CacheUnavailable):
        popular.warming_record(collection_ids=collection_ids, questions=len(asked), seconds=seconds)
    return len(asked)
