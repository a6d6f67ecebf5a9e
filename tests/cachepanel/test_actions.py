"""What the panel's actions change, and only that: each behind CSRF, each in the admin log."""

from __future__ import annotations

import html
import json

import pytest
from django.contrib.admin.models import LogEntry
from django.test import Client
from django.urls import reverse

from documents.models import Collection
from ragcache import keys, switches, values
from tests.chat.factories import handbook
from tests.ragcache.helpers import app_keys, ask, outcomes, overrides, redis

pytestmark = pytest.mark.django_db

TEA = "How hot should the water be for green tea?"
QUESTIONS = [TEA, "How do I fix a flat tyre?", "When is the tax return due?", "What are neutron stars?"]
HTMX = {"HX-Request": "true", "HX-Target": "panel-messages"}
NOT_CACHE = [b"rc:scopes", b"rc:switches"]  # what a flush of everything keeps: where changes go, and settings


def answer_key() -> str:
    return next(redis().scan_iter(match="rc:ans:*")).decode()


def of_kind(kind: str) -> set[bytes]:
    return {key for key in app_keys() if keys.kind(key.decode()) == kind}


def all_actions() -> list[tuple[str, dict[str, str]]]:
    key = answer_key()
    return [
        (reverse("cachepanel:key_expire"), {"key": key, "seconds": "60", "mode": "set"}),
        (reverse("cachepanel:key_delete"), {"key": key}),
        (reverse("cachepanel:flush"), {"target": "ret", "confirmed": "yes"}),
        (reverse("cachepanel:flush"), {"target": "document", "document_id": "1", "confirmed": "yes"}),
        (reverse("cachepanel:flush"), {"target": "all", "confirmed": "yes"}),
        (reverse("cachepanel:switches"), {"ret": "on", "emb": "on", "sem_threshold": "0.9"}),
        (reverse("cachepanel:switches"), {"action": "reset"}),
        (reverse("cachepanel:republish"), {}),
    ]


def test_every_action_needs_the_csrf_token(admin_user):
    collection = handbook()
    ask(TEA, [collection.pk])
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    before = {key: redis().pttl(key) for key in app_keys()}
    for url, data in all_actions():
        response = client.post(url, data, headers={"HX-Request": "true"})
        assert response.status_code == 403, url
    assert set(before) == set(app_keys()) and overrides() == {}
    assert not LogEntry.objects.exists()

    client.get(reverse("cachepanel:overview"))  # sets the CSRF cookie, as the page does
    token = client.cookies["csrftoken"].value
    url, data = all_actions()[1]
    response = client.post(url, data, headers={**HTMX, "X-CSRFToken": token})
    assert response.status_code == 200 and not redis().exists(data["key"])


def test_every_action_is_written_to_the_admin_log_with_who_and_how_many(admin_client, admin_user):
    collection = handbook()
    for question in QUESTIONS:
        ask(question, [collection.pk])
    actions = all_actions()
    for url, data in actions:
        response = admin_client.post(url, data, headers=HTMX)
        assert response.status_code == 200, (url, response.content)
    entries = list(LogEntry.objects.order_by("pk"))
    assert len(entries) == len(actions)
    assert all(entry.user_id == admin_user.pk and "touched" in entry.change_message for entry in entries[:6])
    assert entries[1].object_repr == actions[1][1]["key"] and entries[1].is_deletion()
    assert "Flushed every key of the app" in entries[4].change_message
    assert entries[7].change_message.startswith("Republished 0 generation copies")


def test_flushing_a_layer_removes_that_layer_only(admin_client):
    collection = handbook()
    for question in QUESTIONS:
        ask(question, [collection.pk])
    before = {kind: of_kind(kind) for kind in ("emb", "ret", "ans", "doc", "stats", "gen")}
    assert all(before.values())
    response = admin_client.post(reverse("cachepanel:flush"), {"target": "ans", "confirmed": "yes"}, headers=HTMX)
    assert f"{len(before['ans']):,} keys deleted".encode() in response.content
    assert json.loads(response["HX-Trigger"]) == {"cache-changed": {}}  # the key lists refresh
    assert of_kind("ans") == set()
    assert all(of_kind(kind) == before[kind] for kind in ("emb", "ret", "doc", "stats", "gen"))


def test_flushing_a_document_removes_exactly_the_entries_that_cited_it(admin_client, settings):
    settings.RETRIEVAL_TOP_K = 2  # each entry cites two of the seven documents
    collection = handbook()
    for question in QUESTIONS:
        ask(question, [collection.pk])
    tea = collection.documents.get(title="tea")
    citing: set[bytes] = set()
    for key in of_kind("ret"):
        entry = values.decode(redis().get(key), values.RETRIEVAL)
        if tea.pk in {passage[1] for passage in entry["passages"]}:
            citing.add(key)
            citing |= {k for k in of_kind("ans") if redis().get(k).split(b" ")[1].decode() == entry["ctx"]}
    assert citing and of_kind("ret") - citing  # some entries cite tea, others do not
    before = set(app_keys())
    response = admin_client.post(
        reverse("cachepanel:flush"), {"target": "document", "document_id": tea.pk, "confirmed": "yes"}, headers=HTMX
    )
    assert f"the entries citing tea: {len(citing)} keys deleted".encode() in response.content
    assert set(app_keys()) == before - citing - {keys.document_index(keys.scope_tag([collection.pk]), tea.pk).encode()}


def test_flushing_everything_keeps_what_is_not_the_apps_and_the_switches(admin_client):
    collection = handbook()
    ask(TEA, [collection.pk])
    redis().set("someone-else:key", "kept")
    redis().lpush("celery", json.dumps({"task": "queued"}))  # Celery's queue and its bindings
    redis().sadd("_kombu.binding.celery", "celery")
    switches.switches_set(layers={"ans": False}, sem_threshold=None)
    admin_client.post(reverse("cachepanel:flush"), {"target": "all", "confirmed": "yes"}, headers=HTMX)
    assert app_keys() == NOT_CACHE and overrides() == {b"ans": b"0"}
    assert redis().get("someone-else:key") == b"kept" and redis().llen("celery") == 1
    assert redis().smembers("_kombu.binding.celery") == {b"celery"}
    redis().delete("someone-else:key", "celery", "_kombu.binding.celery")


def test_a_flush_asks_for_confirmation_before_it_removes_anything(admin_client):
    collection = handbook()
    ask(TEA, [collection.pk])
    before = set(app_keys())
    response = admin_client.post(reverse("cachepanel:flush"), {"target": "all", "next": "/admin/cache/keys/"})
    assert response.status_code == 200 and b"Yes, flush" in response.content
    assert b"every key of the app" in response.content
    assert set(app_keys()) == before and not LogEntry.objects.exists()
    response = admin_client.post(
        reverse("cachepanel:flush"), {"target": "all", "next": "/admin/cache/keys/", "confirmed": "yes"}
    )
    assert response.status_code == 302 and response["Location"] == "/admin/cache/keys/"
    assert app_keys() == NOT_CACHE


def test_a_flush_never_redirects_off_the_site(admin_client):
    response = admin_client.post(
        reverse("cachepanel:flush"), {"target": "ans", "next": "https://evil.example/", "confirmed": "yes"}
    )
    assert response["Location"] == reverse("cachepanel:overview")


def test_deleting_a_key_and_setting_its_ttl(admin_client):
    collection = handbook()
    ask(TEA, [collection.pk])
    key = answer_key()
    response = admin_client.post(
        reverse("cachepanel:key_expire"), {"key": key, "seconds": 60, "mode": "set"}, headers=HTMX
    )
    assert b"is now 60 s" in response.content and 55 <= redis().ttl(key) <= 60
    assert b'id="key-detail" hx-swap-oob="innerHTML"' in response.content  # the open key shows its new TTL
    admin_client.post(reverse("cachepanel:key_expire"), {"key": key, "seconds": 100, "mode": "extend"}, headers=HTMX)
    assert 150 <= redis().ttl(key) <= 160
    response = admin_client.post(reverse("cachepanel:key_delete"), {"key": key}, headers=HTMX)
    assert f"Deleted {key}.".encode() in response.content and not redis().exists(key)
    assert outcomes(ask(TEA, [collection.pk]))["ans"] == "miss"


@pytest.mark.parametrize(
    ("url", "data", "message"),
    [
        ("cachepanel:key_delete", {"key": "celery"}, "Only the app's own keys"),
        ("cachepanel:key_delete", {"key": "rc:scopes"}, "is not cache"),
        ("cachepanel:key_delete", {"key": "rc:switches"}, "is not cache"),
        ("cachepanel:key_expire", {"key": "celery", "seconds": 5, "mode": "set"}, "Only the app's own keys"),
        ("cachepanel:key_expire", {"key": "rc:ans:x", "seconds": 0, "mode": "set"}, "greater than or equal to 1"),
        ("cachepanel:key_expire", {"key": "rc:switches", "seconds": 5, "mode": "set"}, "have no TTL"),
        ("cachepanel:key_expire", {"key": "rc:scopes", "seconds": 5, "mode": "set"}, "has no TTL"),
        ("cachepanel:flush", {"target": "celery"}, "Select a valid choice"),
        ("cachepanel:flush", {"target": "document"}, "Give the id of the document"),
        ("cachepanel:switches", {"sem_threshold": "1.5"}, "less than or equal to 1"),
        ("cachepanel:switches", {"sem_threshold": "much"}, "Enter a number"),
    ],
)
def test_bad_input_gets_a_message_and_changes_nothing(admin_client, url, data, message):
    redis().lpush("celery", "queued")
    redis().set("rc:ans:x", "{}", ex=600)
    response = admin_client.post(reverse(url), data, headers=HTMX)
    assert response.status_code == 422 and message in html.unescape(response.content.decode())
    assert redis().ttl("celery") == -1 and redis().ttl("rc:ans:x") > 500 and overrides() == {}
    assert redis().exists(keys.switches()) and not LogEntry.objects.exists()
    redis().delete("celery")


def test_without_javascript_an_action_redirects_back_with_its_message(admin_client):
    redis().set("rc:ans:x", "{}", ex=600)
    response = admin_client.post(
        reverse("cachepanel:key_delete"), {"key": "rc:ans:x", "next": "/admin/cache/keys/"}, follow=True
    )
    assert response.redirect_chain == [("/admin/cache/keys/", 302)]
    assert "Deleted rc:ans:x." in [str(m) for m in response.context["messages"]]


def test_a_lost_publish_is_shown_and_republishing_fixes_it(admin_client):
    collection = handbook()
    ask(TEA, [collection.pk])
    generation = Collection.objects.get(pk=collection.pk).generation
    copy = keys.meta(keys.scope_tag([collection.pk]))
    redis().hset(copy, str(collection.pk), generation - 1)  # a bump that never reached Redis
    page = admin_client.get(reverse("cachepanel:overview")).content.decode()
    assert 'class="cp-gen-behind"' in page and "behind: a lost publish" in page
    response = admin_client.post(reverse("cachepanel:republish"), headers=HTMX)
    assert f"ids [{collection.pk}]".encode() in response.content
    assert int(redis().hget(copy, str(collection.pk))) == generation
    page = admin_client.get(reverse("cachepanel:overview")).content.decode()
    assert "cp-gen-behind" not in page and "in step" in page
