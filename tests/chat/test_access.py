"""What callers may steer and learn: cache bypass for staff only, the trace's cache outcomes
for staff only, and rate limits on asks."""

from __future__ import annotations

import pytest
from django.test import Client

from chat import ratelimits
from tests.chat.factories import handbook
from tests.chat.test_api import post
from tests.ragcache.helpers import redis

pytestmark = pytest.mark.django_db

TEA = "How hot should the water be for green tea?"


def staff_client(admin_user) -> Client:
    client = Client(enforce_csrf_checks=False)
    client.force_login(admin_user)
    return client


@pytest.mark.parametrize("header", ["no-cache", "no-store"])
def test_a_bypass_header_from_anyone_but_staff_is_ignored_and_the_trace_says_so(header):
    handbook()
    post(Client(), {"question": TEA})
    answer_key = next(redis().scan_iter(match="rc:ans:*"))
    redis().set(answer_key, redis().get(answer_key).replace(b"eighty", b"EIGHTY"), keepttl=True)
    response = post(Client(), {"question": TEA}, **{"Cache-Control": header})
    data = response.json()
    assert data["trace"]["from_cache"] is True and "EIGHTY" in data["answer"]  # the shared entry was not replaced
    assert data["trace"]["cache_control"] == "ignored: only staff may bypass the cache"


def test_staff_may_bypass_the_cache(admin_user):
    handbook()
    post(Client(), {"question": TEA})
    response = post(staff_client(admin_user), {"question": TEA}, **{"Cache-Control": "no-cache"})
    assert response.json()["trace"]["from_cache"] is False
    assert response.json()["trace"]["cache"]["ans"]["outcome"] == "bypass"


def test_others_learn_only_whether_their_own_answer_came_from_the_cache():
    handbook()
    keys_before = set(redis().scan_iter(match="rc:emb:*"))
    post(Client(), {"question": "Who asked this before?"})  # staff asked nothing; someone asked this
    trace = post(Client(), {"question": "who asked this before?"}).json()["trace"]
    assert set(trace) == {"from_cache", "total_ms"}
    assert trace["from_cache"] is True
    assert set(redis().scan_iter(match="rc:emb:*")) - keys_before  # the layers were used all the same


def test_staff_see_every_layer(admin_user):
    handbook()
    trace = post(staff_client(admin_user), {"question": TEA}).json()["trace"]
    assert {"cache", "stages", "generator", "from_cache", "total_ms"} <= set(trace)


def test_asks_beyond_the_rate_get_a_429_with_retry_after(settings):
    settings.ASK_RATE = "3/m"
    handbook()
    client = Client(REMOTE_ADDR="203.0.113.7")
    statuses = [post(client, {"question": TEA}).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    refused = post(client, {"question": TEA})
    assert 0 < int(refused["Retry-After"]) <= 60
    assert "Too many questions" in refused.json()["error"]
    assert post(Client(REMOTE_ADDR="203.0.113.8"), {"question": TEA}).status_code == 200  # per address


def test_the_chat_says_so_in_a_line_when_the_rate_is_exceeded(settings):
    settings.ASK_RATE = "1/m"
    handbook()
    client = Client(REMOTE_ADDR="203.0.113.9")
    client.post("/ask/", {"question": TEA}, headers={"HX-Request": "true"})
    response = client.post("/ask/", {"question": TEA}, headers={"HX-Request": "true"})
    assert response.status_code == 429
    assert "Too many questions" in response.content.decode() and "Retry-After" in response


def test_signed_in_users_are_limited_per_user_not_per_address(settings, django_user_model):
    settings.ASK_RATE = "1/m"
    handbook()
    first, second = (django_user_model.objects.create_user(username=name, password="pw-" + name * 3)
                     for name in ("ann", "bob"))  # fmt: skip
    statuses = []
    for user in (first, second):
        client = Client(REMOTE_ADDR="203.0.113.10")
        client.force_login(user)
        statuses.append(client.post("/ask/", {"question": TEA}, headers={"HX-Request": "true"}).status_code)
    assert statuses == [200, 200]


@pytest.mark.slow
def test_with_redis_down_the_limiter_lets_asks_through_and_counts_them(settings, redis_server):
    if redis_server is None:
        pytest.skip("stopping Redis needs the suite's own redis-server")
    settings.ASK_RATE = "1/m"
    handbook()
    before = ratelimits.unchecked
    redis_server.stop()
    try:
        statuses = [post(Client(REMOTE_ADDR="203.0.113.11"), {"question": TEA}).status_code for _ in range(3)]
    finally:
        redis_server.start()
    assert statuses == [200, 200, 200]
    assert ratelimits.unchecked >= before + 3


def test_the_chat_shows_cache_layers_to_staff_only(admin_user):
    from tests.chat.test_views import asked_message, stream

    handbook()
    anonymous = Client()
    stream(anonymous, asked_message(anonymous.post("/ask/", {"question": TEA}, headers={"HX-Request": "true"})))
    message_id = asked_message(anonymous.post("/ask/", {"question": TEA}, headers={"HX-Request": "true"}))
    seen_by_anyone = stream(anonymous, message_id)[-1][1]
    assert "answer from cache" in seen_by_anyone
    assert 'cache-hit">ans' not in seen_by_anyone and "embed " not in seen_by_anyone
    staff = staff_client(admin_user)
    message_id = asked_message(staff.post("/ask/", {"question": TEA}, headers={"HX-Request": "true"}))
    seen_by_staff = stream(staff, message_id)[-1][1]
    assert 'cache-hit">ans hit' in seen_by_staff
