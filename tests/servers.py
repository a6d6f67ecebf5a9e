"""The site's own web servers, started as `make run` and `make dev` start them, against the
tests' database and Redis."""

from __future__ import annotations

import os
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ragsite.embedded import free_port
from ragsite.launch import web_command

BASE_DIR = Path(__file__).resolve().parents[1]


@contextmanager
def site_server(kind: str, *, database_url: str, redis_url: str, log: Path, **env: str) -> Iterator[int]:
    """`kind`: "gunicorn" (make run) or "runserver" (make dev). Yields the port once /healthz answers."""
    port = free_port()
    command = web_command(f"127.0.0.1:{port}", dev=kind == "runserver")
    if kind == "runserver":
        command.append("--noreload")
    environment = {
        **os.environ, "DJANGO_SETTINGS_MODULE": "ragsite.settings", "DATABASE_URL": database_url,
        "REDIS_URL": redis_url, "SECRET_KEY": "site-server-test-" + "k" * 40,
        "DEBUG": "1" if kind == "runserver" else "0",
        "SECURE_SSL_REDIRECT": "0", "SECURE_COOKIES": "0", "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "EMBEDDING_PROVIDER": "openai", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1", **env,
    }  # fmt: skip
    if kind == "gunicorn":  # what collectstatic gave make run
        static_root = log.parent / "static-root"
        subprocess.run([*command[:1], str(BASE_DIR / "manage.py"), "collectstatic", "--noinput", "-v0"],
                       env={**environment, "STATIC_ROOT": str(static_root)}, check=True, cwd=BASE_DIR)  # fmt: skip
        environment["STATIC_ROOT"] = str(static_root)
    with log.open("wb") as out:
        server = subprocess.Popen(command, cwd=BASE_DIR, env=environment, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not _healthy(port):
            assert server.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        yield port
    finally:
        server.terminate()
        server.wait(30)


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:  # noqa: S310
            return bool(response.status == 200)
    except OSError:
        return False
