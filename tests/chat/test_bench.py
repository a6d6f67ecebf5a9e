from __future__ import annotations

import json

import pytest
from django.core.management import call_command

from tests.chat.factories import handbook

pytestmark = pytest.mark.django_db


def test_the_benchmark_runs_both_modes_and_reports_medians(tmp_path, capsys):
    handbook("Bench")
    call_command("bench", "--collection", "Bench", "--rounds", "1", "--json", str(tmp_path / "bench.json"))
    out = capsys.readouterr().out
    assert "fully cached" in out and "speed-up, uncached / cached" in out
    figures = json.loads((tmp_path / "bench.json").read_text())
    assert figures["questions"] == 20 and figures["rounds"] == 1
    assert set(figures["median_ms"]) >= {"uncached", "cached", "miss_with_cache"}
    assert figures["speedup"] > 0
