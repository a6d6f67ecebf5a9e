"""Who may look at the cache panel and who may change the cache through it."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry
from django.test import Client
from django.urls import reverse

from ragcache import keys
from tests.cachepanel.factories import staff_user
from tests.ragcache.helpers import redis

pytestmark = pytest.mark.django_db

PAGES = [
    reverse("cachepanel:overview"),
    reverse("cachepanel:keys"),
    reverse("cachepanel:key") + "?key=rc:gen",
]
KEY = "rc:ans:extractive:extractive-v1:1:q:c"
ACTIONS = [
    (reverse("cachepanel:key_delete"), {"key": KEY}),
    (reverse("cachepanel:key_expire"), {"key": KEY, "seconds": "60", "mode": "set"}),
    (reverse("cachepanel:flush"), {"target": "ans", "confirmed": "yes"}),
    (reverse("cachepanel:flush"), {"target": "all", "confirmed": "yes"}),
    (reverse("cachepanel:switches"), {"ret": "on", "sem_threshold": "0.9"}),
    (reverse("cachepanel:republish"), {}),
]


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("url", PAGES)
def test_anonymous_visitors_are_sent_to_the_admin_login(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login") + "?next=")


def test_an_anonymous_htmx_refresh_sends_the_whole_page_to_the_login(client):
    response = client.get(
        reverse("cachepanel:overview"),
        headers={"HX-Request": "true", "HX-Target": "overview", "HX-Current-URL": "http://testserver/admin/cache/"},
    )
    assert response.status_code == 200
    assert response["HX-Redirect"] == reverse("admin:login") + "?next=%2Fadmin%2Fcache%2F"


@pytest.mark.parametrize("url", PAGES)
@pytest.mark.parametrize("who", ["staff without the permission", "the permission without staff status"])
def test_signed_in_users_without_the_permission_get_403(url, who):
    user = staff_user("someone") if who.startswith("staff") else staff_user("someone", "view_cache", is_staff=False)
    assert signed_in(user).get(url).status_code == 403


@pytest.mark.parametrize("url", PAGES)
def test_a_read_only_admin_may_look(url):
    response = signed_in(staff_user("reader", "view_cache")).get(url)
    assert response.status_code == 200
    assert b"Delete this key" not in response.content and b"Save switches" not in response.content


@pytest.mark.parametrize(("url", "data"), ACTIONS)
def test_a_read_only_admin_may_not_act(url, data):
    redis().set(KEY, "{}", ex=600)
    redis().hset(keys.switches(), "ret", "0")
    response = signed_in(staff_user("reader", "view_cache")).post(url, data)
    assert response.status_code == 403
    assert redis().ttl(KEY) > 60 and redis().hget(keys.switches(), "ret") == b"0"  # nothing changed
    assert not LogEntry.objects.exists()


@pytest.mark.parametrize("url", PAGES)
def test_managers_and_superusers_may_look(url, admin_client):
    assert signed_in(staff_user("manager", "view_cache", "manage_cache")).get(url).status_code == 200
    assert admin_client.get(url).status_code == 200


def test_the_admin_index_lists_the_panel_for_those_who_may_look(admin_client):
    index = reverse("admin:index")
    assert b'href="/admin/cachepanel/cachepanel/"' in admin_client.get(index).content
    assert b"/admin/cachepanel/" in signed_in(staff_user("reader", "view_cache")).get(index).content
    assert b"/admin/cachepanel/" not in signed_in(staff_user("someone")).get(index).content
    response = admin_client.get("/admin/cachepanel/cachepanel/")
    assert response.status_code == 302 and response["Location"] == reverse("cachepanel:overview")


@pytest.mark.parametrize("method", ["put", "delete", "patch"])
def test_pages_declare_their_methods(admin_client, method):
    assert getattr(admin_client, method)(reverse("cachepanel:overview")).status_code == 405
    assert admin_client.get(reverse("cachepanel:flush")).status_code == 405


@pytest.mark.parametrize("path", ["1/change/", "1/history/", "1/delete/", "add/"])
def test_the_admins_own_pages_of_the_panel_model_do_not_exist(admin_client, path):
    assert admin_client.get(f"/admin/cachepanel/cachepanel/{path}").status_code == 404
