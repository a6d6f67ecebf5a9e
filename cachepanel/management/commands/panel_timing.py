"""Time the cache panel's pages over HTTP against a running site (`make run`), beside a
bare admin view of the same server: the median of each, as the client saw it and as the
server reports it (Server-Timing). Fill Redis first with `manage.py cache_fill N`."""

from __future__ import annotations

import http.cookiejar
import re
import statistics
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ragcache import census, client, keys, values

SERVER_TIMING = re.compile(r"app;dur=([\d.]+)")
ROWS = {"HX-Request": "true", "HX-Target": "key-rows"}


class Command(BaseCommand):
    help = "Time the cache panel's pages over HTTP against a running site, beside a bare admin view."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--base", default="http://127.0.0.1:8000")
        parser.add_argument("--login-file", type=Path, default=Path(".data/admin-login.txt"))
        parser.add_argument("--runs", type=int, default=30)

    def handle(self, *args: Any, base: str, login_file: Path, runs: int, **options: Any) -> None:
        username, password = login_file.read_text().split()[:2]
        total = client.run("timing", lambda redis: redis.dbsize())
        client.run("timing", census.take)  # the overview shows a fresh count, as it would 15 s later
        key = next(client.run("timing", lambda redis: redis.scan_iter(match=keys.layer_pattern("ans"), count=1000)))
        stored = client.run("timing", lambda redis: redis.get(key))
        question = (values.decode(stored if isinstance(stored, bytes) else b"", values.ANSWER) or {}).get("q", "")
        detail = {"HX-Request": "true", "HX-Target": "key-detail"}
        pages = [
            ("bare admin view (302)", "/admin/cachepanel/cachepanel/", {}, {}),
            ("overview, whole page", "/admin/cache/", {}, {}),
            ("overview, 5 s refresh", "/admin/cache/", {}, {"HX-Request": "true", "HX-Target": "overview"}),
            ("keys, whole page", "/admin/cache/keys/", {}, {}),
            ("keys, a page of rows", "/admin/cache/keys/", {"kind": "ans"}, ROWS),
            ("keys, filtered by a question", "/admin/cache/keys/", {"text": question}, ROWS),
            ("one key, whole page", "/admin/cache/keys/detail/", {"key": key}, {}),
            ("one key, detail pane", "/admin/cache/keys/detail/", {"key": key}, detail),
        ]
        browser = _Browser(base)
        browser.sign_in(username, password)
        self.stdout.write(f"{total:,} keys in Redis; {runs} runs per page, medians in ms\n")
        self.stdout.write(f"{'page':32} {'server':>9} {'HTTP':>9} {'server p90':>11}")
        for name, url, params, headers in pages:
            server, seen = [], []
            for _ in range(runs + 2):
                started = time.perf_counter()
                status, response_headers, _ = browser.get(url, params, headers)
                seen.append((time.perf_counter() - started) * 1000)
                if status not in (200, 302):
                    raise CommandError(f"{url} answered {status}")
                server.append(float(SERVER_TIMING.search(response_headers["Server-Timing"]).group(1)))  # type: ignore[union-attr]
            server, seen = server[2:], seen[2:]  # the first two warm up
            p90 = statistics.quantiles(server, n=10)[-1]
            self.stdout.write(f"{name:32} {statistics.median(server):9.2f} {statistics.median(seen):9.2f} {p90:11.2f}")


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class _Browser:
    """Just enough of a browser for the admin: cookies, CSRF, no redirects followed."""

    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/")
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies), _NoRedirects)

    def get(self, url: str, params: dict[str, str], headers: dict[str, str]) -> tuple[int, Any, bytes]:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        return self._open(urllib.request.Request(self.base + url + query, headers=headers))

    def sign_in(self, username: str, password: str) -> None:
        self.get("/admin/login/", {}, {})
        token = next(cookie.value for cookie in self.cookies if cookie.name == "csrftoken")
        data = urllib.parse.urlencode({"username": username, "password": password, "csrfmiddlewaretoken": token})
        request = urllib.request.Request(
            self.base + "/admin/login/?next=/admin/", data=data.encode(),
            headers={"Referer": self.base + "/admin/login/"},
        )  # fmt: skip
        if self._open(request)[0] != 302:
            raise CommandError("Signing in failed: check the login file.")

    def _open(self, request: urllib.request.Request) -> tuple[int, Any, bytes]:
        try:
            with self.opener.open(request, timeout=30) as response:
                return response.status, response.headers, response.read()
        except urllib.error.HTTPError as error:  # 3xx and 4xx come here when not followed
            return error.code, error.headers, error.read()
