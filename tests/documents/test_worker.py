from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from documents.models import Document
from documents.services import document_create
from ragsite import health, requestid
from tests.documents.factories import collection_create

BASE_DIR = Path(__file__).resolve().parents[2]


@pytest.fixture()
def celery_not_eager():
    from ragsite.celery import app

    app.conf.task_always_eager = False
    yield
    app.conf.task_always_eager = True


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_ingests_what_an_upload_queued(test_database_url, redis_url, celery_not_eager, tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "ragsite.settings",
        "DATABASE_URL": test_database_url,
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": redis_url,
        "SECRET_KEY": "worker-test-" + "k" * 40,
        "DEBUG": "0",
        "WORKER_HEARTBEAT_SECONDS": "1",
    }
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "ragsite", "worker", "-l", "INFO",
             "--without-gossip", "--without-mingle"],
            cwd=BASE_DIR, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        asking = requestid.current.set("upload-7f3a")  # as the upload's request set it
        try:
            document = document_create(
                collection=collection_create(), filename="tea.txt", data=b"Brew green tea at eighty degrees."
            )  # autocommit: the task is sent at once, as after a request
        finally:
            requestid.current.reset(asking)
        deadline = time.monotonic() + 120
        status = "pending"
        while time.monotonic() < deadline and worker.poll() is None:
            status = Document.objects.values_list("status", flat=True).get(pk=document.pk)
            if status in {"ready", "failed"}:
                break
            time.sleep(0.2)
        assert status == "ready", log.read_text()[-3000:]
        assert Document.objects.get(pk=document.pk).chunks.count() == 1
        assert "documents.tasks.ingest_document" in log.read_text()
        lines = log.read_text().splitlines()
        task_lines = [line for line in lines if "ingest_document" in line and "succeeded" in line]
        assert task_lines and all("[upload-7f3a]" in line for line in task_lines), log.read_text()[-3000:]
        seen = health.worker_last_seen()  # the worker's heartbeat, which /readyz reads
        assert seen is not None and seen < 5
    finally:
        worker.terminate()
        worker.wait(30)
