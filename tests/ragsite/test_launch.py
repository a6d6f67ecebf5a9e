from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psycopg
import pytest

from ragsite.embedded import free_port

BASE_DIR = Path(__file__).resolve().parents[2]


def start(data_dir: Path, demo_dir: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"}}
    env.update(
        RAGSITE_DATA_DIR=str(data_dir), DEMO_DIR=str(demo_dir), RUN_ADDRESS=f"127.0.0.1:{port}",
        DJANGO_SETTINGS_MODULE="ragsite.settings", PYTHONUNBUFFERED="1",
    )  # fmt: skip
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "ragsite.launch"], cwd=BASE_DIR, env=env, stdout=out, stderr=subprocess.STDOUT
        )


def wait_for(predicate, *, timeout: float, what: str, log: Path):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}; log:\n{log.read_text()[-4000:]}")


def page(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except OSError:
        return None


def statuses(database_url: str) -> list[str]:
    with psycopg.connect(_libpq(database_url)) as conn:
        return [row[0] for row in conn.execute("SELECT status FROM documents_document ORDER BY id")]


def _libpq(url: str) -> str:
    # postgres://postgres@/ragsite?host=%2F...  ->  keyword form psycopg accepts
    from urllib.parse import parse_qs, unquote, urlparse

    parsed = urlparse(url)
    host = unquote(parse_qs(parsed.query)["host"][0])
    return f"host={host} user=postgres dbname={parsed.path.lstrip('/')}"


def stop(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGINT)
    return process.wait(60)


@pytest.mark.slow
def test_make_run_serves_the_site_with_the_demo_collection_and_keeps_data_across_restarts(tmp_path):
    data_dir, demo_dir, log = tmp_path / "data", tmp_path / "demo", tmp_path / "run.log"
    demo_dir.mkdir()
    (demo_dir / "tea.html").write_text(
        "<html><body><main><p>Brew green tea at eighty degrees.</p></main></body></html>"
    )
    (demo_dir / "coffee.txt").write_text("Coffee wants water just off the boil.")
    port = free_port()

    process = start(data_dir, demo_dir, port, log)
    try:
        wait_for(lambda: page(f"http://127.0.0.1:{port}/admin/login/") == 200, timeout=120, what="the site", log=log)
        database_url = re.search(r"PostgreSQL: (\S+)", log.read_text()).group(1)
        wait_for(lambda: statuses(database_url) == ["ready", "ready"], timeout=120, what="the demo", log=log)
        assert page(f"http://127.0.0.1:{port}/readyz") == 200  # the worker it started is seen
        assert list((data_dir / "metrics").glob("counter_*.db"))  # the web workers count for /metrics
    finally:
        assert stop(process) == 0
    first_run = log.read_text()
    login = re.search(r"Admin login: admin / (\S+)", first_run)
    assert login, first_run[-3000:]
    assert "2 added, 0 already present" in first_run
    assert not (data_dir / "postgres" / "postmaster.pid").exists()  # Ctrl-C stopped PostgreSQL too

    process = start(data_dir, demo_dir, port, log)
    try:
        wait_for(lambda: page(f"http://127.0.0.1:{port}/") == 200, timeout=120, what="the restarted site", log=log)
        second_run = log.read_text()[len(first_run) :]
        assert "0 added, 2 already present" in second_run
        assert login.group(1) not in second_run  # printed once, when it was made
        assert "Admin login: kept in" in second_run
        assert "Created the admin account" not in second_run
        database_url = re.search(r"PostgreSQL: (\S+)", second_run).group(1)
        assert statuses(database_url) == ["ready", "ready"]
    finally:
        assert stop(process) == 0
