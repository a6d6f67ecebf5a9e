"""A bump that never reached Redis is found and published by whoever next can, within seconds."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db.models import F

from documents.models import Catalog, Collection
from documents.services import document_ingest, document_replace_source, unpublished_publish
from ragcache import catalog, keys
from ragcache.client import breaker
from tests.chat.factories import handbook
from tests.ragcache.helpers import ask, generation_copy, own_redis, redis

BASE_DIR = Path(__file__).resolve().parents[2]
QUESTION = "How hot should the water be for green tea?"


@pytest.mark.django_db
def test_a_generation_bumped_but_never_published_is_published_by_the_sweep():
    collection = handbook()
    ask(QUESTION, [collection.pk])
    collection.refresh_from_db()
    Collection.objects.filter(pk=collection.pk).update(generation=collection.generation + 5)  # the publish was lost
    Catalog.objects.filter(pk=1).update(version=Catalog.objects.get(pk=1).version + 1)
    assert generation_copy(collection.pk) < collection.generation + 5
    assert unpublished_publish() == 2  # the generation and the catalog
    assert generation_copy(collection.pk) == collection.generation + 5
    assert int(redis().hget(keys.catalog(), "v")) == Catalog.objects.get(pk=1).version
    assert int(redis().hget(keys.meta(keys.scope_tag([collection.pk])), "catalog")) == Catalog.objects.get(pk=1).version
    collection.refresh_from_db()
    assert collection.published_generation == collection.generation
    assert unpublished_publish() == 0  # nothing left


@pytest.mark.django_db
def test_the_publish_on_commit_marks_what_it_published(django_capture_on_commit_callbacks):
    collection = handbook()
    with django_capture_on_commit_callbacks(execute=True):
        collection.documents.get(title="tea").save()  # a new generation
        collection.save()  # a new catalog
    collection.refresh_from_db()
    assert collection.published_generation == collection.generation
    assert Catalog.objects.get(pk=1).published_version == Catalog.objects.get(pk=1).version


ASKER = """
import json, sys
import django
django.setup()
from chat.pipeline import answer
from ragsite.sweeper import start
start(interval=0.5)
for line in sys.stdin:
    collection_id, question = line.rstrip("\\n").split("\\t")
    result = answer(question=question, collection_ids=[int(collection_id)])
    print(json.dumps({"text": result.text, "from_cache": result.trace["from_cache"]}), flush=True)
"""


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_another_process_stops_serving_the_old_answer_within_seconds_of_a_lost_publish(
    redis_server, test_database_url, redis_url, tmp_path
):
    own_redis(redis_server)
    collection = handbook()
    tea = collection.documents.get(title="tea")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "ragsite.settings", "DATABASE_URL": test_database_url,
           "REDIS_URL": redis_url, "SECRET_KEY": "sweep-test-" + "k" * 40, "DEBUG": "0"}  # fmt: skip
    log = tmp_path / "asker.log"
    with log.open("w") as errors:
        other = subprocess.Popen([sys.executable, "-c", ASKER], cwd=BASE_DIR, env=env, text=True,
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors)  # fmt: skip

    def ask_there() -> dict[str, object]:
        assert other.stdin and other.stdout
        other.stdin.write(f"{collection.pk}\t{QUESTION}\n")
        other.stdin.flush()
        ready, _, _ = select.select([other.stdout], [], [], 60)
        line = other.stdout.readline() if ready else ""
        assert line, log.read_text()[-3000:]  # no answer within 60 s, or the asker died
        return dict(json.loads(line))

    try:
        assert "eighty degrees" in str(ask_there()["text"])
        assert ask_there()["from_cache"] is True
        redis().save()  # Redis comes back from this snapshot: old copies, old entries
        redis_server.stop()
        try:
            document_replace_source(document=tea, filename="tea.txt", data=b"Green tea wants water at seventy degrees.")
            document_ingest(document_id=tea.pk)  # committed here; its publish fails
        finally:
            redis_server.start()
        breaker.reset()  # this process goes away, as `manage.py ingest` would: only the sweep is left
        catalog.forget()
        deadline = time.monotonic() + 10
        answered = ask_there()
        while "seventy" not in str(answered["text"]) and time.monotonic() < deadline:
            time.sleep(0.25)
            answered = ask_there()
        assert "seventy degrees" in str(answered["text"]), answered
        assert time.monotonic() < deadline
    finally:
        other.terminate()
        other.wait(10)


@pytest.mark.django_db
def test_saving_a_collection_read_before_a_bump_keeps_the_bump():
    collection = handbook()
    stale = Collection.objects.get(pk=collection.pk)
    bump = {"generation": F("generation") + 1, "published_generation": F("generation") + 1}
    Collection.objects.filter(pk=collection.pk).update(**bump)
    bumped = Collection.objects.get(pk=collection.pk)
    stale.description = "edited in the admin meanwhile"
    stale.save()
    saved = Collection.objects.get(pk=collection.pk)
    assert (saved.generation, saved.published_generation) == (bumped.generation, bumped.published_generation)
    assert saved.description == "edited in the admin meanwhile"
