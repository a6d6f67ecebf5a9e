from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parents[2]


def without_services(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"}}
    env.update(RAGSITE_DATA_DIR=str(data_dir), DEBUG="1", DJANGO_SETTINGS_MODULE="ragsite.settings")
    return env


def manage(data_dir: Path, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=BASE_DIR, env=without_services(data_dir),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.mark.slow
def test_manage_py_runs_on_embedded_services_it_starts_and_stops(tmp_path):
    data_dir = tmp_path / "data"
    manage(data_dir, "migrate", "--noinput")
    out = manage(
        data_dir, "shell", "-c",
        "import os; from documents.models import Collection; Collection.objects.create(name='Kept');"
        "print(os.environ['DATABASE_URL']); print(os.environ['REDIS_URL'])",
    )  # fmt: skip
    database_url, redis_url = out.split()[-2:]
    assert database_url.startswith("postgres://postgres@/ragsite?host=")
    assert redis_url.startswith("redis://127.0.0.1:")

    # Each command stopped what it started: no server is left on the data dir or the port.
    assert not (data_dir / "postgres" / "postmaster.pid").exists()
    assert not (data_dir / "redis" / "port").exists()
    port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass

    # The data survives: a later command sees what an earlier one wrote.
    out = manage(
        data_dir,
        "shell",
        "-c",
        "from documents.models import Collection; print(list(Collection.objects.values_list('name', flat=True)))",
    )
    assert "['Kept']" in out
