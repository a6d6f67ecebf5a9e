"""The list of scopes every change is copied to: made by asks, forgotten when long unasked."""

from __future__ import annotations

import time

import pytest

from ragcache import keys, scopes
from tests.chat.factories import handbook
from tests.ragcache.helpers import ask, redis

pytestmark = pytest.mark.django_db


def test_a_scope_unasked_for_longer_than_its_statistics_live_is_forgotten(settings):
    collection = handbook()
    ask("How hot should the water be for green tea?", [collection.pk])
    tag = keys.scope_tag([collection.pk])
    days_ago = time.time() - 3 * 86400
    redis().hset(keys.scopes(), mapping={"{old}": f"1,2|{days_ago:.0f}", "{older}": "3"})  # the last: no time
    assert scopes.listed(redis()) == {tag: [collection.pk]}
    assert set(redis().hkeys(keys.scopes())) == {tag.encode()}


def test_a_scope_listed_again_meanwhile_is_not_forgotten():
    redis().hset(keys.scopes(), "{t}", "7|0")
    found = redis().hget(keys.scopes(), "{t}")
    scopes.list_scope(redis(), "{t}", [7])  # its copy was made again, between the read and the forgetting
    scopes.evaluate(redis(), scopes.FORGET, 1, keys.scopes(), "{t}", found)
    assert scopes.listed(redis()) == {"{t}": [7]}
