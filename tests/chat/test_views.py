from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from chat.models import Conversation, Message
from documents.models import Collection
from tests.chat.factories import document_ingested, handbook

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


def ask(client: Client, question: str, **fields) -> object:
    return client.post(reverse("chat:ask"), {"question": question, **fields}, headers=HTMX)


def stream(client: Client, message_id: int) -> list[tuple[str, str]]:
    response = client.get(reverse("chat:stream", args=[message_id]))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream"
    body = b"".join(response.streaming_content).decode()  # type: ignore[attr-defined]
    events = []
    for block in body.strip().split("\n\n"):
        lines = block.split("\n")
        events.append((lines[0].removeprefix("event: "), "\n".join(line[6:] for line in lines[1:])))
    return events


def asked_message(response) -> int:
    found = re.search(r"/messages/(\d+)/stream/", response.content.decode())
    assert found, response.content.decode()
    return int(found.group(1))


def test_the_chat_page_invites_a_question():
    handbook()
    response = Client().get("/")
    content = response.content.decode()
    assert response.status_code == 200
    assert "Ask your documents" in content and "1 collection" in content
    assert 'hx-post="/ask/"' in content and 'name="csrfmiddlewaretoken"' in content
    assert "hx-sse" in content  # the SSE extension that streams answers


def test_asking_stores_the_question_and_streams_the_answer_in_pieces():
    handbook()
    client = Client()
    response = ask(client, "How hot should the water be for green tea?")
    assert response.status_code == 200
    conversation = Conversation.objects.get()
    assert response["HX-Push-Url"] == f"/c/{conversation.pk}/"
    content = response.content.decode()
    assert "How hot should the water be for green tea?" in content and 'sse-connect="/messages/' in content

    events = stream(client, asked_message(response))
    tokens = [data for name, data in events if name == "token"]
    assert len(tokens) >= 2 and events[-1][0] == "done"
    done = events[-1][1]
    assert "Green tea should be brewed" in done and 'class="cite"' in done and "/sources/" in done
    assert 'class="badge total"' in done and "retrieve" not in done  # the stages are for staff

    reply = Message.objects.get(role="assistant")
    assert reply.status == "complete" and reply.citations[0]["title"] == "tea"
    assert set(reply.trace["stages"]) >= {"embed", "retrieve", "generate"}

    page = client.get(f"/c/{conversation.pk}/").content.decode()
    assert "How hot should the water be for green tea?" in page and "Green tea should be brewed" in page


def test_a_second_question_continues_the_conversation():
    handbook()
    client = Client()
    first = ask(client, "How do I fix a flat tyre?")
    conversation = Conversation.objects.get()
    second = ask(client, "And when are taxes due?", conversation=conversation.pk)
    assert "HX-Push-Url" not in second
    assert Conversation.objects.count() == 1 and conversation.messages.count() == 4
    assert asked_message(second) != asked_message(first)


def test_reconnecting_to_a_finished_answer_does_not_generate_it_again(openai_chat):
    handbook()
    client = Client()
    message_id = asked_message(ask(client, "How hot should the water be for green tea?"))
    stream(client, message_id)
    assert openai_chat.calls["/v1/chat/completions"] == 1
    events = stream(client, message_id)  # the browser's EventSource reconnects
    assert [name for name, _ in events] == ["done"]
    assert openai_chat.calls["/v1/chat/completions"] == 1


def test_anonymous_conversations_belong_to_their_session():
    handbook()
    owner, stranger = Client(), Client()
    message_id = asked_message(ask(owner, "How do I fix a flat tyre?"))
    conversation = Conversation.objects.get()
    assert stranger.get(f"/c/{conversation.pk}/").status_code == 404
    assert stranger.get(reverse("chat:stream", args=[message_id])).status_code == 404
    assert "How do I fix a flat tyre?" not in stranger.get("/").content.decode()
    assert "How do I fix a flat tyre?" in owner.get("/").content.decode()


def test_signed_in_users_keep_their_conversations_across_sessions(django_user_model):
    handbook()
    user = django_user_model.objects.create_user(username="ada", password="pw-ada-12345")
    laptop, phone = Client(), Client()
    laptop.force_login(user)
    ask(laptop, "How do I fix a flat tyre?")
    phone.force_login(user)
    assert "How do I fix a flat tyre?" in phone.get("/").content.decode()
    assert Conversation.objects.get().user == user


@pytest.mark.parametrize(
    ("question", "fields", "message"),
    [
        ("", {}, "Type a question first."),
        ("   ", {}, "Type a question first."),
        ("x" * 2001, {}, "The question is 2,001 characters long; the limit is 2,000."),
        ("Tea?", {"collections": "999999"}, "Unknown collection: 999999."),
        ("Tea?", {"conversation": "999999"}, "That conversation does not exist any more."),
    ],
)
def test_bad_questions_get_a_clear_message_and_store_nothing(question, fields, message):
    handbook()
    response = ask(Client(), question, **fields)
    assert response.status_code == 422
    assert response["HX-Retarget"] == "#ask-error"
    assert message in response.content.decode()
    assert not Message.objects.exists()


def test_a_bad_question_without_htmx_is_a_400():
    handbook()
    response = Client().post(reverse("chat:ask"), {"question": ""})
    assert response.status_code == 400 and "Type a question first." in response.content.decode()


def test_asking_without_any_collection_says_so():
    response = ask(Client(), "Anything?")
    assert response.status_code == 422 and "There is no collection to ask yet." in response.content.decode()


def test_a_failing_language_model_shows_an_error_and_stores_no_answer(openai_chat):
    handbook()
    client = Client()
    openai_chat.fail_after(0)
    events = stream(client, asked_message(ask(client, "How hot for green tea?")))
    assert events[-1][0] == "done" and "The language model failed to answer" in events[-1][1]
    reply = Message.objects.get(role="assistant")
    assert (reply.status, reply.content, reply.citations) == ("failed", "", [])


def test_a_failing_embedding_service_says_so_in_the_chat(openai_embeddings):
    handbook()
    client = Client()
    openai_embeddings.fail_after(0)
    events = stream(client, asked_message(ask(client, "A question nobody asked before?")))
    assert events[-1][0] == "done" and "The embedding service did not answer" in events[-1][1]
    assert Message.objects.get(role="assistant").status == "failed"


def test_html_in_questions_and_documents_renders_as_text():
    collection = Collection.objects.create(name="Web")
    document_ingested(
        collection, "xss.txt", "The <script>alert('doc')</script> tag runs code in pages. Never trust it."
    )
    client = Client()
    response = ask(client, "What does the <script>alert('q')</script> tag do?")
    assert "<script>alert('q')</script>" not in response.content.decode()
    assert "&lt;script&gt;alert(&#x27;q&#x27;)&lt;/script&gt;" in response.content.decode()
    events = stream(client, asked_message(response))
    body = "".join(data for _, data in events)
    assert "<script>" not in body and "&lt;script&gt;" in body
    document = collection.documents.get()
    source = client.get(reverse("chat:source", args=[document.pk])).content.decode()
    assert "<script>alert('doc')" not in source and "&lt;script&gt;alert(&#x27;doc&#x27;)" in source


def test_the_source_view_highlights_the_cited_passage():
    handbook()
    client = Client()
    events = stream(client, asked_message(ask(client, "How hot should the water be for green tea?")))
    url = re.search(r'href="(/sources/[^"]+)"', events[-1][1]).group(1).replace("&amp;", "&")
    content = client.get(url).content.decode()
    assert '<mark id="passage">Green tea should be brewed' in content
    assert "tea.txt" in content


def test_the_source_view_says_when_the_passage_is_gone():
    collection = handbook()
    document = collection.documents.get(title="tea")
    content = Client().get(reverse("chat:source", args=[document.pk]) + "?passage=deadbeef").content.decode()
    assert "The cited passage is no longer in this document" in content and "<mark" not in content


def test_private_collections_are_read_by_staff_and_their_groups_only(django_user_model, admin_user):
    private = handbook("Private", is_public=False)
    readers = Group.objects.create(name="Readers")
    private.reader_groups.add(readers)
    member = django_user_model.objects.create_user(username="member", password="pw-member-1")
    member.groups.add(readers)
    outsider = django_user_model.objects.create_user(username="outsider", password="pw-outsider-1")
    document = private.documents.get(title="tea")

    anonymous = Client()
    assert ask(anonymous, "Tea?").status_code == 422  # nothing readable
    assert anonymous.get(reverse("chat:source", args=[document.pk])).status_code == 404
    for user, allowed in [(member, True), (outsider, False), (admin_user, True)]:
        client = Client()
        client.force_login(user)
        assert (client.get(reverse("chat:source", args=[document.pk])).status_code == 200) is allowed
        response = ask(client, "How hot should the water be for green tea?")
        assert (response.status_code == 200) is allowed


def test_the_chat_page_makes_a_fixed_number_of_queries(django_assert_max_num_queries):
    handbook()
    client = Client()
    stream(client, asked_message(ask(client, "Tea?")))
    conversation = Conversation.objects.get()
    stream(client, asked_message(ask(client, "Bikes?", conversation=conversation.pk)))
    with CaptureQueriesContext(connection) as queries:
        client.get(f"/c/{conversation.pk}/")
    two_exchanges = len(queries)  # read now: the next request clears the log
    assert two_exchanges <= 8
    for question in ["Taxes?", "Stars?", "Errors?"]:
        stream(client, asked_message(ask(client, question, conversation=conversation.pk)))
    with django_assert_max_num_queries(two_exchanges):
        client.get(f"/c/{conversation.pk}/")


def test_an_answer_abandoned_mid_stream_is_failed_when_the_browser_reconnects():
    handbook()
    client = Client()
    message_id = asked_message(ask(client, "How do I fix a flat tyre?"))
    long_ago = timezone.now() - timedelta(hours=1)
    Message.objects.filter(pk=message_id).update(status="streaming", created_at=long_ago)
    events = stream(client, message_id)
    assert [name for name, _ in events] == ["done"]
    assert "The answer was interrupted. Please ask again." in events[0][1]
    assert Message.objects.get(pk=message_id).status == "failed"


def test_an_unknown_page_gets_the_site_404():
    response = Client().get("/c/999999/")
    assert response.status_code == 404
    assert "There is nothing here, or it is not yours to see." in response.content.decode()


def test_a_cached_answer_streams_with_five_statements_and_the_done_event_before_the_write():
    handbook()
    client = Client()
    stream(client, asked_message(ask(client, "How hot should the water be for green tea?")))  # now cached
    message_id = asked_message(ask(client, "How hot should the water be for green tea?"))
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("chat:stream", args=[message_id]))
        before_done = None
        for part in response.streaming_content:  # type: ignore[attr-defined]
            if part.startswith(b"event: done"):
                before_done = [q["sql"].split()[0] for q in queries]
    # The session, the message, its claim, the collections still readable; the answer itself
    # from the cache, with no query.
    assert before_done == ["SELECT", "SELECT", "UPDATE", "SELECT"]
    assert [q["sql"].split()[0] for q in queries] == ["SELECT", "SELECT", "UPDATE", "SELECT", "UPDATE"]  # then kept
    message = Message.objects.get(pk=message_id)
    assert message.status == Message.Status.COMPLETE and message.trace["from_cache"] is True


def asked_then_revoked(django_user_model) -> tuple[Client, int, Collection]:
    """A reader of a private collection asks, then loses access before the answer streams."""
    private = handbook("Private", is_public=False)
    readers = Group.objects.create(name="Readers")
    private.reader_groups.add(readers)
    member = django_user_model.objects.create_user(username="member", password="pw-member-1")
    member.groups.add(readers)
    client = Client()
    client.force_login(member)
    message_id = asked_message(ask(client, "How hot should the water be for green tea?"))
    member.groups.remove(readers)
    return client, message_id, private


def test_an_answer_streamed_after_access_was_revoked_is_refused(django_user_model):
    client, message_id, _ = asked_then_revoked(django_user_model)

    events = stream(client, message_id)
    assert "eighty degrees" not in "".join(data for _, data in events)
    message = Message.objects.get(pk=message_id)
    assert message.status == Message.Status.FAILED
    assert "no longer" in message.error and not message.content


def test_an_answer_is_drawn_only_from_the_collections_still_readable(django_user_model):
    public = handbook()
    client, message_id, private = asked_then_revoked(django_user_model)
    assert set(Message.objects.get(pk=message_id).collection_ids) == {public.pk, private.pk}

    stream(client, message_id)
    message = Message.objects.get(pk=message_id)
    assert message.status == Message.Status.COMPLETE
    assert message.collection_ids == [public.pk]
    cited = {citation["document_id"] for citation in message.citations}
    assert cited and cited <= set(public.documents.values_list("pk", flat=True))


def test_the_header_offers_sign_in_to_visitors_and_sign_out_to_users(django_user_model):
    handbook()
    client = Client()
    visitor = client.get("/").content.decode()
    assert 'href="/sign-in/?next=/"' in visitor and "Sign out" not in visitor

    client.force_login(django_user_model.objects.create_user(username="ada", password="pw-ada-12345"))
    header = client.get("/").content.decode().split("</header>")[0]
    assert "Sign in" not in header
    form = re.search(r'<form method="post" action="/sign-out/"[^>]*>.*?</form>', header, re.S)
    assert form and 'name="csrfmiddlewaretoken"' in form.group(0) and "Sign out" in form.group(0)

    assert client.get("/sign-out/").status_code == 405  # a link cannot sign anyone out
    response = client.post("/sign-out/")
    assert response.status_code == 302 and response["Location"] == "/"
    assert 'href="/sign-in/?next=/"' in client.get("/").content.decode()


def test_every_out_of_band_swap_of_an_exchange_has_a_target_on_the_page():
    handbook()
    client = Client()
    pages = ["/"]
    first = ask(client, "How do I fix a flat tyre?")
    conversation = Conversation.objects.get()
    pages.append(conversation.get_absolute_url())
    second = ask(client, "And when are taxes due?", conversation=conversation.pk)
    for page, exchange in zip(pages, [first, second], strict=True):
        # The page as the browser has it when the question is sent.
        ids = set(re.findall(r'\bid="([^"]+)"', client.get(page).content.decode()))
        tags = re.findall(r"<[^>]*\bhx-swap-oob\b[^>]*>", exchange.content.decode())
        swapped = [re.search(r'\bid="([^"]+)"', tag).group(1) for tag in tags]  # type: ignore[union-attr]
        assert swapped and set(swapped) <= ids, (page, set(swapped) - ids)


def test_a_models_markdown_answer_is_shown_as_html_with_its_code_indented(openai_chat, monkeypatch):
    handbook()
    answer = "Like this [1]:\n\n```python\nfor i, x in enumerate(xs):\n    print(i, x)\n```\n\n<b>done</b>"
    monkeypatch.setattr(openai_chat, "chat_answer", lambda body: (answer, 100))
    client = Client()
    message_id = asked_message(ask(client, "How do I loop with indexes?"))
    events = stream(client, message_id)
    tokens = "".join(data for name, data in events if name == "token")
    assert tokens.startswith("Like this [1]:<br><br>```python<br>")  # streamed as plain text, then replaced
    page = client.get(Message.objects.get(pk=message_id).conversation.get_absolute_url()).content.decode()
    for html in [events[-1][1], page]:
        assert "<pre><code>for i, x in enumerate(xs):\n    print(i, x)\n</code></pre>" in html
        assert "```" not in html and "<b>done</b>" not in html and "&lt;b&gt;done&lt;/b&gt;" in html
        assert re.search(r'<a href="/sources/[^"]+" title="Source 1" class="cite"[^>]*>\[1\]</a>', html)
