from __future__ import annotations

import os

from celery import Celery

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
