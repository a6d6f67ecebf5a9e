from __future__ import annotations

import os

from celery import Celery
from celery.signals import worker_ready

from ragsite.embedded import configure_environment

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ragsite.settings")
# Every entry point imports this package before the settings, so this is the one place
# that starts or attaches to the embedded services. The tests' settings module starts
# services of its own (see conftest.py).
if os.environ["DJANGO_SETTINGS_MODULE"] == "ragsite.settings":
    configure_environment()

app = Celery("ragsite")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_ready.connect  # the worker runs the solo pool: tasks run in this process
def warm_up_embedder(**kwargs: object) -> None:
    from documents.embedding import warm_up
    from ragsite import sweeper

    warm_up()
    sweeper.start()
