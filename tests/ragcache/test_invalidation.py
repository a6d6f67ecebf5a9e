from __future__ import annotations

import re
import threading
import time

import pytest
from django.db import connection, transaction

from documents.models import Collection, Document
from documents.services import document_ingest, document_replace_source
from ragcache import keys
from ragcache.invalidation import flush_all, flush_layer, invalidate_document
from tests.chat.factories import handbook
from tests.ragcache.helpers import app_keys, ask, generation_copy, outcomes, redis

QUESTION = "How hot should the water be for green tea?"


def edit(document: Document, text: str) -> None:
    document_replace_source(document=document, filename=document.original_filename, data=text.encode())
    document_ingest(document_id=document.pk)


@pytest.mark.django_db
def test_an_edit_that_changes_the_context_misses_ret_and_ans_and_shows_the_new_text(
    django_capture_on_commit_callbacks,
):
    collection = handbook()
    tea = collection.documents.get(title="tea")
    ask(QUESTION, [collection.pk])
    with django_capture_on_commit_callbacks(execute=True):
        edit(tea, "Green tea should be brewed with water at seventy degrees for three minutes.")
    result = ask(QUESTION, [collection.pk])
    assert outcomes(result)["ret"] == "miss" and outcomes(result)["ans"] == "miss"
    assert "seventy degrees for three minutes" in result.text and "eighty" not in result.text


@pytest.mark.django_db
def test_an_edit_outside_the_context_misses_ret_but_hits_ans(django_capture_on_commit_callbacks, settings):
    settings.RETRIEVAL_TOP_K = 2
    collection = handbook()
    before = ask(QUESTION, [collection.pk])
    cited = {c["document_id"] for c in before.citations}
    stars = collection.documents.get(title="stars")
    assert stars.pk not in cited
    with django_capture_on_commit_callbacks(execute=True):
        edit(stars, "Neutron stars spin hundreds of times a second and are the densest stars known.")
    after = ask(QUESTION, [collection.pk])
    assert outcomes(after)["ret"] == "miss" and outcomes(after)["ans"] == "hit"
    assert after.text == before.text


@pytest.mark.django_db
def test_after_a_delete_no_answer_cites_the_document(django_capture_on_commit_callbacks):
    collection = handbook()
    tea = collection.documents.get(title="tea")
    assert tea.pk in {c["document_id"] for c in ask(QUESTION, [collection.pk]).citations}
    with django_capture_on_commit_callbacks(execute=True):
        tea.delete()
    result = ask(QUESTION, [collection.pk])
    assert tea.pk not in {c["document_id"] for c in result.citations}
    assert "Green tea should be brewed" not in result.text
    assert not redis().smembers(keys.document_index(keys.scope_tag([collection.pk]), tea.pk))  # deleted eagerly


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_edit_changes_nothing():
    collection = handbook()
    tea = collection.documents.get(title="tea")
    first = ask(QUESTION, [collection.pk])
    generation = Collection.objects.get(pk=collection.pk).generation
    with pytest.raises(RuntimeError), transaction.atomic():
        edit(tea, "Green tea wants boiling water.")
        raise RuntimeError("the change is abandoned")
    assert Collection.objects.get(pk=collection.pk).generation == generation
    assert generation_copy(collection.pk) == generation
    again = ask(QUESTION, [collection.pk])
    assert outcomes(again) == {"ret": "hit", "ans": "hit"} and again.text == first.text


@pytest.mark.django_db
def test_invalidate_document_deletes_exactly_the_entries_that_cited_it(settings):
    settings.RETRIEVAL_TOP_K = 1
    collection = handbook()
    ask(QUESTION, [collection.pk])
    ask("How do I fix a flat tyre?", [collection.pk])
    tea = collection.documents.get(title="tea")
    tea_entries = redis().smembers(keys.document_index(keys.scope_tag([collection.pk]), tea.pk))
    assert len(tea_entries) == 2  # its retrieval and its answer
    assert invalidate_document(tea.pk) == 2
    assert not any(redis().exists(key) for key in tea_entries)
    assert outcomes(ask("How do I fix a flat tyre?", [collection.pk]))["ans"] == "hit"  # the other stays
    assert outcomes(ask(QUESTION, [collection.pk]))["ret"] == "miss"


@pytest.mark.django_db
def test_flushing_a_layer_or_everything_leaves_other_keys_alone():
    collection = handbook()
    ask(QUESTION, [collection.pk])
    redis().lpush("celery", "a queued task")  # a broker key: no TTL, not the app's
    assert flush_layer("ans") == 1
    assert not [k for k in app_keys() if k.startswith(b"rc:ans:")]
    assert [k for k in app_keys() if k.startswith(b"rc:ret:")]
    assert flush_all() > 0
    kept = {keys.scopes().encode(), keys.switches().encode()}  # where changes go, and settings: not cache
    assert set(app_keys()) <= kept and redis().llen("celery") == 1
    redis().delete("celery")
    with pytest.raises(ValueError, match="Unknown cache layer"):
        flush_layer("everything")


REVISION = re.compile(r"brewed at \d+ degrees for (\d+) minutes")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("semantic", [False, True], ids=["exact layers", "with sem"])
def test_no_answer_begun_after_a_commit_comes_from_before_it(settings, semantic):
    """Askers ask all along while an editor commits revisions; every answer is recorded with
    when it began, and none may quote a revision older than the last one committed (and
    published, which the commit's own callback does) before it began."""
    settings.RAGCACHE = {**settings.RAGCACHE, "ENABLED": {**settings.RAGCACHE["ENABLED"], "sem": semantic}}
    collection = handbook()
    tea, bike = (collection.documents.get(title=title) for title in ("tea", "bike"))
    edit(tea, "Green tea should be brewed at 60 degrees for 0 minutes.")
    questions = [QUESTION, "How many minutes should green tea be brewed?", "How do I fix a flat tyre?"]
    committed: list[tuple[float, int]] = [(time.monotonic(), 0)]  # (when, revision), in order
    served: list[tuple[float, str, str]] = []  # (began, question, text)
    errors: list[BaseException] = []
    done = threading.Event()

    def editor() -> None:
        try:
            for revision in range(1, EDITS + 1):
                edit(tea, f"Green tea should be brewed at {60 + revision} degrees for {revision} minutes.")
                committed.append((time.monotonic(), revision))  # committed and published by now
                if revision % 4 == 0:  # an edit elsewhere: retrievals miss, answers may still hit
                    edit(bike, f"To fix a flat tyre, use {revision} tyre levers and a patch.")
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            done.set()
            connection.close()

    def asker(offset: int) -> None:
        try:
            turn = offset
            while not done.is_set():
                question = questions[turn % len(questions)]
                began = time.monotonic()
                served.append((began, question, ask(question, [collection.pk]).text))
                turn += 1
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=editor)] + [threading.Thread(target=asker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    assert committed[-1][1] == EDITS
    stale, checked = [], 0
    for began, question, text in served:
        if question == questions[2]:
            continue
        quoted = [int(found) for found in REVISION.findall(text)]
        assert quoted, f"the answer to {question!r} quotes no revision: {text!r}"
        at_least = max(revision for when, revision in committed if when <= began)
        checked += 1
        if min(quoted) < at_least:
            stale.append((round(began - committed[0][0], 3), question, min(quoted), at_least))
    assert checked >= 2 * EDITS, "too few answers overlapped the edits to say anything"
    assert not stale, f"{len(stale)} of {checked} answers came from before a commit: {stale[:5]}"
    ask(QUESTION, [collection.pk])
    final = ask(QUESTION, [collection.pk])
    assert f"for {EDITS} minutes" in final.text and final.trace["from_cache"] is True


EDITS = 16


@pytest.mark.django_db
def test_moving_a_document_to_another_collection_bumps_both(django_capture_on_commit_callbacks):
    collection, other = handbook(), Collection.objects.create(name="Other")
    tea = collection.documents.get(title="tea")
    before = {c.pk: c.generation for c in Collection.objects.all()}
    ask(QUESTION, [collection.pk, other.pk])
    with django_capture_on_commit_callbacks(execute=True):
        tea.collection = other
        tea.title = "tea (moved)"
        tea.save()
    after = {c.pk: c.generation for c in Collection.objects.all()}
    assert after[collection.pk] > before[collection.pk] and after[other.pk] > before[other.pk]
    assert generation_copy(other.pk, scope=[collection.pk, other.pk]) == after[other.pk]
    result = ask(QUESTION, [collection.pk, other.pk])
    assert outcomes(result)["ret"] == "miss"
    assert "tea (moved)" in [c["title"] for c in result.citations]


@pytest.mark.django_db
def test_progress_saves_during_ingestion_bump_nothing():
    collection = handbook()
    generation = Collection.objects.get(pk=collection.pk).generation
    tea = collection.documents.get(title="tea")
    tea.progress = 50
    tea.save(update_fields=["progress", "updated_at"])
    assert Collection.objects.get(pk=collection.pk).generation == generation
