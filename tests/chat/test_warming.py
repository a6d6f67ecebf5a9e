"""Warming: after a change, the popular questions of the changed collections are answered
again in the background, so their first reader after the change finds them cached."""

from __future__ import annotations

import pytest

from documents.services import document_ingest, document_replace_source
from ragcache import keys, popular, scopes
from tests.chat.factories import handbook
from tests.ragcache.helpers import ask, outcomes, redis

TEA = "How hot should the water be for green tea?"
TYRE = "How do I fix a flat tyre?"


@pytest.fixture
def warming_on(settings):
    settings.RAGCACHE = {**settings.RAGCACHE, "WARMING": True, "WARMING_QUESTIONS": 1, "WARMING_DELAY": 0}


def change_tea(collection) -> None:
    tea = collection.documents.get(title="tea")
    document_replace_source(document=tea, filename="tea.txt", data=b"Green tea wants water at seventy degrees.")
    document_ingest(document_id=tea.pk)


@pytest.mark.django_db(transaction=True)
def test_a_popular_question_is_a_hit_on_its_first_ask_after_a_change(warming_on):
    collection = handbook()
    for question in (TEA, TEA, TEA, TYRE):  # the tea question is the popular one
        ask(question, [collection.pk])
    asked = [keys.cache_question(TEA), keys.cache_question(TYRE)]  # as the cache keys them
    assert popular.questions_top([collection.pk], 5) == [([collection.pk], question) for question in asked]
    change_tea(collection)  # committed: its publish queues the warming (run at once here: eager tasks)
    first = ask(TEA, [collection.pk])
    assert first.trace["from_cache"] is True and "seventy degrees" in first.text  # warm, and not stale
    assert outcomes(ask(TYRE, [collection.pk]))["ans"] != "hit"  # beyond WARMING_QUESTIONS: left cold
    last = popular.warming_last()
    assert last is not None and last["collections"] == [collection.pk] and last["questions"] == 1
    # Three asks before the change and one after; warming's own asks (one per publish) do not count.
    assert redis().zscore(keys.popular(keys.scope_tag([collection.pk]), popular.today()), asked[0]) == 4


@pytest.mark.django_db(transaction=True)
def test_without_warming_the_first_ask_after_a_change_is_computed_afresh():
    collection = handbook()
    ask(TEA, [collection.pk])
    ask(TEA, [collection.pk])
    change_tea(collection)
    first = ask(TEA, [collection.pk])
    assert first.trace["from_cache"] is False and "seventy degrees" in first.text
    assert not redis().exists(keys.popular(keys.scope_tag([collection.pk]), popular.today()))  # not counted: off


@pytest.mark.django_db(transaction=True)
def test_the_cache_panel_says_what_the_last_warming_did(warming_on, admin_client):
    collection = handbook()
    ask(TEA, [collection.pk])
    change_tea(collection)
    page = " ".join(admin_client.get("/admin/cache/").content.decode().split())
    assert "Warming on: after a change, up to 1 of the questions asked most" in page
    assert f"Last warming: 1 question for collection {collection.pk}, in" in page


@pytest.mark.django_db
def test_popular_questions_are_those_of_today_and_yesterday_summed(warming_on):
    older, yesterday, today = popular.today() - 2, popular.today() - 1, popular.today()
    for ids in ([7, 8], [9], [10]):  # the scopes in use, as their lookups list them
        scopes.list_scope(redis(), keys.scope_tag(ids), ids)
    for day, counts in ((older, {"old favourite?": 50}), (yesterday, {"b?": 2, "a?": 1}), (today, {"a?": 3})):
        for question, count in counts.items():
            redis().zincrby(keys.popular(keys.scope_tag([7, 8]), day), count, question)
    redis().zincrby(keys.popular(keys.scope_tag([9]), today), 3, "c?")
    redis().zincrby(keys.popular(keys.scope_tag([10]), today), 9, "of another collection?")
    assert popular.questions_top([7, 9], 2) == [([7, 8], "a?"), ([9], "c?")]  # 4 and 3; b? (2), older days left out
