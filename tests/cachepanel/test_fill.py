from __future__ import annotations

import pytest
from django.core.management import call_command

from ragcache.browse import key_detail
from ragcache.stats import totals
from tests.ragcache.helpers import app_keys, redis

pytestmark = pytest.mark.django_db


def test_cache_fill_writes_realistic_entries_of_every_layer_that_the_panel_decodes(capsys):
    call_command("cache_fill", "300")
    assert totals(1440)["ans"]["hit"] == 0  # the real statistics are left alone ...
    assert "Wrote 300 entries (emb, ret, ans) for 100 synthetic questions" in capsys.readouterr().out
    found = [key.decode() for key in app_keys()]
    by_kind = {kind: [key for key in found if key.startswith(f"rc:{kind}:")] for kind in ("emb", "ret", "ans", "sem")}
    assert [len(by_kind[kind]) for kind in ("emb", "ret", "ans")] == [100, 100, 100]
    assert len(by_kind["sem"]) == 5 and any(key.startswith("rc:doc:") for key in found)  # 5 of the 50 scopes
    assert all(redis().ttl(key) > 0 for key in found if key not in {"rc:scopes", "rc:switches"})
    for kind in ("emb", "ret", "ans", "sem"):
        detail = key_detail(by_kind[kind][0])
        assert detail is not None and not detail.warning, (kind, detail and detail.warning)
    assert 1000 < redis().strlen(by_kind["ans"][0]) < 4000  # an answer's realistic size
    assert all(int(key.rsplit(":", 1)[1]) > 10**9 for key in found if key.startswith("rc:doc:"))
    call_command("cache_fill", "3", "--statistics")
    assert totals(1440)["ans"]["hit"] > 1440  # ... unless asked for a day of them
