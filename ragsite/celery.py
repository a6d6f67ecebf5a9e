from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.signals import before_task_publish, task_prerun, worker_ready
from kombu.exceptions import ChannelError

from ragsite import requestid
from ragsite.embedded import configure_environment

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ragsite.settings")
# Every entry point imports this package before the settings, so this is the one place
# that starts or attaches to the embedded services. The tests' settings module starts
# services of its own (see conftest.py).
if os.environ["DJANGO_SETTINGS_MODULE"] == "ragsite.settings":
    configure_environment()

# Ingestion and the speed layer's background work (cache warming) queue apart, so that a
# worker can be scaled for each (`celery worker -Q ingest`, `-Q cache`).
QUEUES = ("ingest", "cache")

app = Celery("ragsite")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
before_task_publish.connect(requestid.task_headers_add, weak=False)
task_prerun.connect(requestid.task_started, weak=False)


@worker_ready.connect  # the worker runs tasks on threads of this process (CELERY_WORKER_POOL)
def warm_up_embedder(**kwargs: object) -> None:
    from documents.embedding import warm_up
    from ragsite import health, sweeper

    warm_up()
    sweeper.start()
    health.heartbeat_start()


def queue_lengths() -> dict[str, int]:
    """Tasks waiting in each of the site's queues, as the broker counts them."""
    from ragcache.client import CacheUnavailable

    try:
        with app.connection_for_read() as connection:
            connection.ensure_connection(max_retries=1)
            return {queue: _queue_length(connection.default_channel, queue) for queue in QUEUES}
    except Exception as exc:  # noqa: BLE001 (any broker failure: no figure rather than a wrong one)
        raise CacheUnavailable(f"the broker did not answer: {type(exc).__name__}") from exc


def _queue_length(channel: Any, queue: str) -> int:
    try:
        return int(channel.queue_declare(queue, passive=True).message_count)
    except ChannelError:  # never declared, or (Redis) emptied: nothing waits in it
        return 0
