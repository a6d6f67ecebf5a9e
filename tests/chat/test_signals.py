from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from chat.models import Conversation
from tests.chat.factories import handbook

pytestmark = pytest.mark.django_db

QUESTION = "How do I fix a flat tyre?"


def ask(client: Client, question: str) -> None:
    response = client.post(reverse("chat:ask"), {"question": question}, headers={"HX-Request": "true"})
    assert response.status_code == 200


def test_signing_in_keeps_the_conversations_asked_anonymously(django_user_model):
    handbook()
    user = django_user_model.objects.create_user(username="ada", password="pw-ada-12345", is_staff=True)
    client = Client()
    ask(client, QUESTION)
    conversation = Conversation.objects.get()
    assert conversation.user is None

    response = client.post("/admin/login/?next=/", {"username": "ada", "password": "pw-ada-12345", "next": "/"})
    assert response.status_code == 302 and response["Location"] == "/"

    conversation.refresh_from_db()
    assert (conversation.user, conversation.session_key) == (user, "")
    assert QUESTION in client.get("/").content.decode()
    assert client.get(conversation.get_absolute_url()).status_code == 200
    phone = Client()
    phone.force_login(user)
    assert QUESTION in phone.get("/").content.decode()


def test_a_user_signed_in_by_the_test_client_keeps_them_too(django_user_model):
    handbook()
    user = django_user_model.objects.create_user(username="bo", password="pw-bo-123456")
    client = Client()
    ask(client, QUESTION)
    assert client.login(username="bo", password="pw-bo-123456")
    assert Conversation.objects.get().user == user


def test_only_the_signing_in_sessions_conversations_move(django_user_model):
    handbook()
    user = django_user_model.objects.create_user(username="ada", password="pw-ada-12345")
    mine, theirs = Client(), Client()
    ask(mine, QUESTION)
    ask(theirs, "When are taxes due?")
    mine.force_login(user)
    assert list(Conversation.objects.filter(user=user).values_list("title", flat=True)) == [QUESTION]
    stranger = Conversation.objects.get(user__isnull=True)
    assert stranger.title == "When are taxes due?"
    assert "When are taxes due?" in theirs.get("/").content.decode()


def test_signing_in_again_as_someone_else_moves_nothing(django_user_model):
    handbook()
    ada = django_user_model.objects.create_user(username="ada", password="pw-ada-12345")
    bo = django_user_model.objects.create_user(username="bo", password="pw-bo-123456")
    client = Client()
    ask(client, QUESTION)
    client.force_login(ada)
    client.force_login(bo)
    assert Conversation.objects.get().user == ada


def test_a_reader_who_is_not_staff_signs_in_on_the_sites_own_page(django_user_model):
    from tests.chat.factories import handbook

    handbook()
    django_user_model.objects.create_user(username="reader", password="pw-reader-123")
    client = Client()
    page = client.get("/").content.decode()
    assert 'href="/sign-in/?next=/"' in page
    form = client.get("/sign-in/?next=/").content.decode()
    assert 'name="username"' in form and "csrfmiddlewaretoken" in form
    response = client.post("/sign-in/?next=/", {"username": "reader", "password": "pw-reader-123"})
    assert response.status_code == 302 and response["Location"] == "/"
    assert "Sign out" in client.get("/").content.decode()
    wrong = Client().post("/sign-in/", {"username": "reader", "password": "nope"})
    assert wrong.status_code == 200 and "Please enter a correct username and password" in wrong.content.decode()
    away = Client().post("/sign-in/?next=https://evil.example/", {"username": "reader", "password": "pw-reader-123"})
    assert away["Location"] == "/"  # never sent off the site
