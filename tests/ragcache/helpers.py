from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django_redis import get_redis_connection

from chat.pipeline import Answer, answer
from ragcache.layers import Policy


def ask(question: str, collection_ids: list[int], **kwargs: Any) -> Answer:
    return answer(question=question, collection_ids=collection_ids, **kwargs)


def fresh(question: str, collection_ids: list[int]) -> Answer:
    """The answer computed from scratch, touching no cache entry."""
    return answer(question=question, collection_ids=collection_ids, cache_policy=Policy(read=False, write=False))


def outcomes(result: Answer) -> dict[str, str]:
    return {layer: entry["outcome"] for layer, entry in result.trace["cache"].items()}


def redis():
    return get_redis_connection("default")


def app_keys() -> list[bytes]:
    return sorted(redis().scan_iter(match="rc:*"))


@contextmanager
def round_trips() -> Iterator[list[str]]:
    """The commands clients send to Redis meanwhile (not those a script runs), from MONITOR."""
    seen: list[str] = []
    ready = threading.Event()
    stop = threading.Event()

    def watch() -> None:
        with redis().monitor() as monitor:
            ready.set()
            for command in monitor.listen():
                if command["command"] == "PING" and stop.is_set():
                    return
                name = command["command"].split()[0].upper()
                # Scripts' own commands and connection handshakes are not round trips of an ask.
                if command.get("client_type") != "lua" and name not in {"HELLO", "CLIENT"}:
                    seen.append(name)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    ready.wait(5)
    time.sleep(0.05)
    try:
        yield seen
    finally:
        stop.set()
        redis().ping()  # wakes the monitor so it can stop
        watcher.join(5)
        while seen and seen[-1] == "PING":
            seen.pop()
