from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[2]


def manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DEBUG", "DJANGO_SETTINGS_MODULE"}}
    # Explicit URLs keep the embedded services out of it; `check` connects to neither.
    environment.update(DATABASE_URL="postgres://nobody@127.0.0.1:1/none", REDIS_URL="redis://127.0.0.1:1/0", **env)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=BASE_DIR, env=environment, capture_output=True, text=True
    )


def test_production_refuses_to_start_on_the_default_secret_key():
    result = manage("check")
    assert result.returncode != 0
    assert "Set SECRET_KEY: the default key is for DEBUG=1 only." in result.stderr


def test_debug_runs_on_the_default_key():
    assert manage("check", DEBUG="1").returncode == 0


def test_production_settings_pass_the_deployment_checks():
    result = manage(
        "check", "--deploy", "--fail-level", "WARNING", SECRET_KEY="a-long-random-production-key-" + "x" * 40
    )
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def test_the_proxy_header_is_trusted_only_when_configured():
    probe = ("from django.conf import settings; "
             "print(getattr(settings, 'SECURE_PROXY_SSL_HEADER', None))")  # fmt: skip
    key = "a-long-random-production-key-" + "x" * 40
    shell = [sys.executable, "-c", "import django; django.setup(); " + probe]
    base = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DEBUG"}}
    base.update(DJANGO_SETTINGS_MODULE="ragsite.settings", DATABASE_URL="postgres://nobody@127.0.0.1:1/none",
                REDIS_URL="redis://127.0.0.1:1/0", SECRET_KEY=key)  # fmt: skip
    alone = subprocess.run(shell, cwd=BASE_DIR, env=base, capture_output=True, text=True)
    behind = subprocess.run(shell, cwd=BASE_DIR, env={**base, "TRUST_X_FORWARDED_PROTO": "1"}, capture_output=True,
                            text=True)  # fmt: skip
    assert alone.stdout.strip() == "None", alone.stderr
    assert behind.stdout.strip() == "('HTTP_X_FORWARDED_PROTO', 'https')", behind.stderr


def test_a_local_site_keeps_the_secret_key_it_made(tmp_path):
    from ragsite.embedded import local_secret_key

    path = tmp_path / "data" / "secret-key"
    first = local_secret_key(path)
    assert len(first) >= 50 and first == local_secret_key(path)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
