"""The site under test: the web server `make run` starts (gunicorn with threads), on a
free port, against the bench's own embedded services."""

from __future__ import annotations

import os
import subprocess
import time
import urllib.request
from pathlib import Path

from ragsite.embedded import BASE_DIR, free_port
from ragsite.launch import THREADS, web_command


class Site:
    def __init__(self, *, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ, "DEBUG": "0", "SECURE_SSL_REDIRECT": "0", "SECURE_COOKIES": "0",
            # The rate limit's own Redis commands are counted, at a rate no load here reaches.
            "ASK_RATE": "1000000/m",
            "DATABASE_POOL_MAX": str(THREADS), "DJANGO_SETTINGS_MODULE": "ragsite.settings", **env,
        }  # fmt: skip
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Site:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                web_command(f"127.0.0.1:{self.port}"), cwd=BASE_DIR, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the web server exited; see {self.log}")
            try:
                with urllib.request.urlopen(f"{self.base}/healthz", timeout=2) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"the web server did not answer within 120 s; see {self.log}")

    def __exit__(self, *exc: object) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
