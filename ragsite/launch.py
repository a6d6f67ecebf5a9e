"""`make run`: services, migrations, the admin account, the demo collection, web + worker.

The web server is the one production runs (gunicorn with threads, static files by
whitenoise, DEBUG off); `make dev` serves with Django's runserver and its autoreload
instead. Ctrl-C stops everything this started; the data under .data/ stays.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from ragsite.celery import QUEUES
from ragsite.embedded import BASE_DIR, DATA_DIR, configure_environment

DEMO_DIR = Path(os.environ.get("DEMO_DIR", "/usr/share/doc/python3.11/html/tutorial"))
DEMO_COLLECTION = "Python 3.11 tutorial"
DEMO_DESCRIPTION = "The tutorial of the Python 3.11 documentation, from Debian's python3.11-doc package."
ADDRESS = os.environ.get("RUN_ADDRESS", "127.0.0.1:8000")
WORKERS = int(os.environ.get("WEB_WORKERS", "2"))
THREADS = int(os.environ.get("WEB_THREADS", "8"))
# Seconds a request may take (a streamed answer with a slow LLM is one request), and a
# worker may take to finish its requests when told to stop.
TIMEOUT = int(os.environ.get("WEB_TIMEOUT", "120"))
GRACEFUL_TIMEOUT = int(os.environ.get("WEB_GRACEFUL_TIMEOUT", "10"))


def manage(*args: str) -> None:
    subprocess.run([sys.executable, str(BASE_DIR / "manage.py"), *args], check=True)


def web_command(address: str, *, dev: bool = False, workers: int | None = None) -> list[str]:
    """The web server: gunicorn's threaded workers (a streamed answer holds one thread, not
    a process), or runserver for development."""
    if dev:
        return [sys.executable, str(BASE_DIR / "manage.py"), "runserver", address]
    return [
        sys.executable, "-m", "gunicorn", "ragsite.wsgi", "--bind", address, "--workers", str(workers or WORKERS),
        "--threads", str(THREADS), "--timeout", str(TIMEOUT), "--graceful-timeout", str(GRACEFUL_TIMEOUT),
    ]  # fmt: skip


def main() -> int:
    dev = "--dev" in sys.argv[1:]
    os.environ.setdefault("DEBUG", "1" if dev else "0")
    # Plain HTTP on this machine: no redirect to HTTPS, cookies without the Secure flag.
    os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
    os.environ.setdefault("SECURE_COOKIES", "0")
    # A database connection for every thread of a worker, and no more.
    os.environ.setdefault("DATABASE_POOL_MAX", str(THREADS))
    configure_environment()
    metrics_dir = DATA_DIR / "metrics"  # every process's counters, summed by /metrics; a new run starts at zero
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(metrics_dir))
    print(f"PostgreSQL: {os.environ['DATABASE_URL']}\nRedis:      {os.environ['REDIS_URL']}", flush=True)
    manage("migrate", "--noinput")
    if not dev:
        manage("collectstatic", "--noinput", "--verbosity", "0")
    manage("ensure_admin", "--login-file", str(DATA_DIR / "admin-login.txt"))
    if DEMO_DIR.is_dir():
        manage("ingest", str(DEMO_DIR), "--collection", DEMO_COLLECTION, "--description", DEMO_DESCRIPTION, "--queue")
    else:
        print(f"No demo collection: {DEMO_DIR} is missing (Debian package python3.11-doc).", flush=True)

    children = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "ragsite",
                "worker",
                "-l",
                "INFO",
                "-Q",
                ",".join(QUEUES),
            ]
        ),  # fmt: skip
        subprocess.Popen(web_command(ADDRESS, dev=dev)),
    ]
    print(f"\nragsite is at http://{ADDRESS}/ (admin: http://{ADDRESS}/admin/). Ctrl-C stops it.\n", flush=True)

    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    while not stopping and all(child.poll() is None for child in children):
        time.sleep(0.5)
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    for child in children:
        try:
            child.wait(20)
        except subprocess.TimeoutExpired:
            child.kill()
    print("Stopped; data kept in .data/.", flush=True)
    return 0 if stopping else 1


if __name__ == "__main__":
    sys.exit(main())
