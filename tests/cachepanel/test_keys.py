"""The key browser: SCAN pages, literal filters, and each kind of value decoded."""

from __future__ import annotations

import html
import re

import numpy as np
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from ragcache import keys, values
from ragcache.browse import keys_page
from tests.chat.factories import handbook
from tests.ragcache.helpers import ask, redis, round_trips

pytestmark = pytest.mark.django_db

TEA = "How hot should the water be for green tea?"
ROWS = {"HX-Request": "true", "HX-Target": "key-rows"}
DETAIL = {"HX-Request": "true", "HX-Target": "key-detail"}
LISTED = re.compile(r'class="cp-key-link"[^>]*>([^<]+)</a>')
NEXT = re.compile(r'href="/admin/cache/keys/\?[^"]*cursor=(\d+)"')


def listed_keys(page: bytes) -> list[str]:
    return [html.unescape(key) for key in LISTED.findall(page.decode())]


def rows_page(client, **params: str) -> bytes:
    response = client.get(reverse("cachepanel:keys"), params, headers=ROWS)
    assert response.status_code == 200
    return bytes(response.content)


def detail_page(client, key: str) -> str:
    response = client.get(reverse("cachepanel:key"), {"key": key}, headers=DETAIL)
    assert response.status_code == 200
    return html.unescape(response.content.decode())


def test_paging_through_1500_keys_reaches_every_key_exactly_once(admin_client):
    written = {f"rc:ans:g:1:{n:032x}:c" for n in range(1500)}
    pipe = redis().pipeline()
    for key in written:
        pipe.set(key, "{}", ex=600)
    pipe.execute()
    seen: list[str] = []
    cursor, pages = "0", 0
    while True:
        page = rows_page(admin_client, kind="ans", cursor=cursor)
        seen += listed_keys(page)
        pages += 1
        found = NEXT.search(page.decode())
        if not found:
            assert b"That is the end of the scan." in page
            break
        cursor = found.group(1)
    assert pages > 10  # pages, not one long list
    assert len(seen) == len(set(seen)) == 1500 and set(seen) == written


def test_one_page_of_rows_costs_one_round_trip():
    for n in range(200):
        redis().set(f"rc:emb:m:{n:032x}", b"\0" * 1536, ex=600)
    with round_trips() as commands:
        page = keys_page(kind="emb")
    assert len(page.rows) >= 50 and commands == ["EVAL"]
    assert all(row.type == "string" and row.bytes > 1536 and 0 < row.ttl_ms <= 600_000 for row in page.rows)
    assert all(row.idle_seconds is not None for row in page.rows)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("weird*key", {"rc:ans:weird*key"}),
        ("weird?key", {"rc:ans:weird?key"}),
        ("we[ir]d", {"rc:ans:we[ir]d"}),
        ("back\\slash", {"rc:ans:back\\slash"}),
        ("*", {"rc:ans:weird*key"}),
    ],
)
def test_the_filter_matches_its_text_literally(admin_client, text, expected):
    for key in ["rc:ans:weird*key", "rc:ans:weird?key", "rc:ans:we[ir]d", "rc:ans:back\\slash", "rc:ans:weirdXkey",
                "rc:ans:weird1key", "rc:ans:wed", "rc:ans:wid", "rc:ans:backslash", "rc:ans:backXslash"]:  # fmt: skip
        redis().set(key, "{}", ex=600)
    assert set(listed_keys(rows_page(admin_client, text=text))) == expected


def test_a_question_finds_its_keys_and_the_kind_narrows_them(admin_client):
    collection = handbook()
    ask(TEA, [collection.pk])
    ask("How do I fix a flat tyre?", [collection.pk])
    found = listed_keys(rows_page(admin_client, text="  how hot should the WATER be for green tea? "))
    assert {keys.kind(key) for key in found} == {"emb", "ret", "ans"}
    assert all(key.endswith(keys.question_hash(TEA.casefold())) or ":" + keys.question_hash(TEA.casefold()) + ":" in key
               for key in found)  # fmt: skip
    answers = listed_keys(rows_page(admin_client, text=TEA, kind="ans"))
    assert len(answers) == 1 and answers[0].startswith("rc:ans:")


def test_an_answer_shows_its_question_text_citations_and_usage(admin_client, openai_chat):
    collection = handbook()
    result = ask(TEA, [collection.pk])
    key = next(redis().scan_iter(match="rc:ans:*")).decode()
    page = detail_page(admin_client, key)
    assert TEA in page and "Green tea should be brewed" in page
    for citation in result.citations:
        assert f'href="{citation["url"]}">{citation["title"]}</a>' in page
    value = values.decode(redis().get(key), values.ANSWER)
    assert f"{value['prompt_tokens']:,} prompt + {value['completion_tokens']:,} completion" in page


def test_a_retrieval_shows_its_passages_linked_to_their_chunks(admin_client):
    collection = handbook()
    ask(TEA, [collection.pk])
    key = next(redis().scan_iter(match="rc:ret:*")).decode()
    entry = values.decode(redis().get(key), values.RETRIEVAL)
    page = detail_page(admin_client, key)
    for chunk_id, _, title, *_ in entry["passages"]:
        assert f'href="{reverse("admin:documents_chunk_change", args=[chunk_id])}">chunk {chunk_id}</a>' in page
        assert title in page
    assert entry["ctx"] in page and TEA in page
    assert admin_client.get(reverse("admin:documents_chunk_change", args=[entry["passages"][0][0]])).status_code == 200


def test_an_embedding_shows_its_model_size_and_norm(admin_client):
    collection = handbook()
    ask(TEA, [collection.pk])
    key = next(redis().scan_iter(match="rc:emb:*")).decode()
    vector = np.frombuffer(redis().get(key), dtype=np.float32)
    page = detail_page(admin_client, key)
    assert "all-MiniLM-L6-v2" in page and "<dd>384</dd>" in page
    assert f"{np.linalg.norm(vector):.4f}" in page and f"{vector[0]:.4f}".rstrip("0") in page


def test_a_semantic_hash_shows_its_questions_and_how_similar_they_are(admin_client, settings):
    settings.RAGCACHE = {**settings.RAGCACHE, "ENABLED": {**settings.RAGCACHE["ENABLED"], "sem": True}}
    collection = handbook()
    for question in [TEA, "How do I fix a flat tyre?", "What temperature for green tea water?"]:
        ask(question, [collection.pk])
    key = next(redis().scan_iter(match="rc:sem:*")).decode()
    page = detail_page(admin_client, key)
    assert TEA in page and "How do I fix a flat tyre?" in page
    assert "Similarity of each pair" in page and "1.00" in page


def test_a_document_index_lists_the_entries_that_cite_it(admin_client):
    collection = handbook()
    ask(TEA, [collection.pk])
    tea = collection.documents.get(title="tea")
    index = keys.document_index(keys.scope_tag([collection.pk]), tea.pk)
    members = {m.decode() for m in redis().smembers(index)}
    page = detail_page(admin_client, index)
    assert members and all(member in page for member in members)
    assert f'href="{reverse("admin:documents_document_change", args=[tea.pk])}">tea</a>' in page


@pytest.mark.parametrize(
    ("key", "write", "warning"),
    [
        ("rc:ans:{t}:g:1:q", lambda key: redis().set(key, '{"text": "an old format"}', ex=600), "no 'a2' header"),
        ("rc:ans:{t}:g:1:q", lambda key: redis().set(key, 'a2 c 1.0 0.0 0.0\n{"text": "cut', ex=600), "is damaged"),
        ("rc:ans:{t}:g:1:q", lambda key: redis().set(key, "a2 c 1.0 0.0 0.0\n[1, 2]", ex=600), "is damaged"),
        ("rc:ans:{t}:g:1:q", lambda key: redis().hset(key, "a", "b"), "should hold a string, not a hash"),
        (
            "rc:ret:{t}:m:hybrid:5:q",
            lambda key: redis().set(key, 'r3 s ab 1.0\n{"passages": [[1]]}', ex=600),
            "not what a ret entry",
        ),
        ("rc:emb:{t}:m:q", lambda key: redis().set(key, b"\x00\x01\x02", ex=600), "not a whole number of float32"),
        ("rc:sem:{t}:m:g:1", lambda key: redis().hset(key, "q", "\xff\xfe"), "not what a sem entry"),
    ],
)
def test_a_value_that_is_not_what_its_layer_holds_is_shown_raw_and_can_be_deleted(admin_client, key, write, warning):
    write(key)
    page = detail_page(admin_client, key)
    assert warning in page and 'class="cp-raw"' in page
    response = admin_client.post(reverse("cachepanel:key_delete"), {"key": key}, headers={"HX-Request": "true"})
    assert response.status_code == 200 and not redis().exists(key)


def test_a_key_that_does_not_exist_says_so(admin_client):
    assert "does not exist (any more)" in detail_page(admin_client, "rc:ans:gone")
    response = admin_client.get(reverse("cachepanel:key"), {"key": "celery"})
    assert response.status_code == 400


def test_the_keys_page_and_a_key_page_are_whole_pages_too(admin_client):
    collection = handbook()
    ask(TEA, [collection.pk])
    key = next(redis().scan_iter(match="rc:ans:*")).decode()
    response = admin_client.get(reverse("cachepanel:key"), {"key": key, "kind": "ans"})
    page = html.unescape(response.content.decode())
    assert '<div class="breadcrumbs">' in page and 'id="key-rows"' in page and TEA in page
    assert page.count('class="cp-key-link"') == 1  # the list keeps its filter


@pytest.mark.parametrize(
    ("url", "params", "headers", "most"),
    [
        ("cachepanel:keys", {}, {}, 3),  # session, user, the admin's app list
        ("cachepanel:keys", {}, ROWS, 2),
        ("cachepanel:key", {"key": "ret"}, DETAIL, 3),  # + the chunks it names
    ],
)
def test_key_pages_make_a_fixed_number_of_queries(admin_client, url, params, headers, most):
    collection = handbook()
    for question in [TEA, "How do I fix a flat tyre?", "When is the tax return due?"]:
        ask(question, [collection.pk])
    if params.get("key") == "ret":
        params = {"key": next(redis().scan_iter(match="rc:ret:*")).decode()}
    with CaptureQueriesContext(connection) as queries:
        assert admin_client.get(reverse(url), params, headers=headers).status_code == 200
    assert len(queries) <= most, [q["sql"] for q in queries]


def test_a_search_goes_on_through_the_keyspace_by_itself_until_it_is_done(admin_client, monkeypatch):
    monkeypatch.setattr("ragcache.browse.SEARCH_COUNT", 50)
    monkeypatch.setattr("ragcache.browse.SCAN_BUDGET_MS", 0)  # one SCAN call per request
    needle = keys.question_hash(TEA.casefold())
    wanted = {f"rc:emb:m:{needle}", f"rc:ret:s:m:hybrid:5:{needle}", f"rc:ans:g:1:{needle}:c"}
    pipe = redis().pipeline()
    for key in [*wanted, *(f"rc:ans:g:1:{n:032x}:c" for n in range(1500))]:
        pipe.set(key, "{}", ex=600)
    pipe.execute()
    page = rows_page(admin_client, text=TEA).decode()
    found, requests = listed_keys(page.encode()), 1
    more = re.search(r'id="key-more" hx-get="([^"]+)"', page)
    while more:
        response = admin_client.get(
            html.unescape(more.group(1)), headers={"HX-Request": "true", "HX-Target": "key-more"}
        )
        page = response.content.decode()
        found += listed_keys(response.content)
        requests += 1
        more = re.search(r'id="key-more" hx-get="([^"]+)"', page)
    assert requests > 5  # many stretches, each its own request
    assert sorted(found) == sorted(wanted)
    assert 'id="key-pager" hx-swap-oob="true"' in page and "3 keys on this page" in page
    assert "That is the end of the scan." in page


@pytest.mark.parametrize("cursor", [str(2**64 * 1024), "9" * 24, "-1", "1e3"])  # past the servers' span, or no number
def test_a_cursor_redis_would_refuse_is_a_clear_error_and_not_an_outage(admin_client, cursor):
    from ragcache.client import breaker

    for _ in range(4):
        page = rows_page(admin_client, cursor=cursor)
        assert b"The cursor is a number from the previous page." in page
    assert breaker.failures == 0 and not breaker.is_open and not breaker.needs_resync


def test_the_catalog_copy_shows_its_version_and_collections(admin_client):
    collection = handbook()
    from ragcache import catalog

    catalog.refresh(from_database=True)
    page = detail_page(admin_client, keys.catalog())
    assert f"version {catalog.current().version}" in page and f"Handbook ({collection.pk})" in page
