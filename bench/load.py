"""HTTP load and timing: wrk for concurrent clients, a keep-alive client for one at a time."""

from __future__ import annotations

import json
import re
import shutil
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlparse

UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


@dataclass(frozen=True)
class LoadResult:
    clients: int
    seconds: float
    requests: int
    per_second: float
    p50_ms: float
    p99_ms: float
    errors: int  # non-2xx answers and socket errors


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def load(url: str, *, clients: int, seconds: float, body: dict[str, Any] | None = None) -> LoadResult:
    """`clients` concurrent keep-alive connections for `seconds` (wrk), GET or POST JSON."""
    threads = max(1, min(clients, 4))
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        if body is not None:
            payload = json.dumps(json.dumps(body))  # a Lua string literal of the JSON
            script.write(
                f'wrk.method = "POST"\nwrk.body = {payload}\nwrk.headers["Content-Type"] = "application/json"\n'
            )
    command = ["wrk", "-t", str(threads), "-c", str(clients), "-d", f"{seconds}s", "--latency", "-s", script.name, url]
    output = subprocess.run(command, capture_output=True, text=True, check=True, timeout=seconds + 60).stdout
    Path(script.name).unlink()
    return parse_wrk(output, clients=clients, seconds=seconds)


def parse_wrk(output: str, *, clients: int, seconds: float) -> LoadResult:
    def latency(percentile: str) -> float:
        found = re.search(rf"^\s*{percentile}%\s+([\d.]+)(us|ms|s)\s*$", output, re.M)
        return float(found.group(1)) * UNITS[found.group(2)] if found else float("nan")

    requests = re.search(r"(\d+) requests in", output)
    per_second = re.search(r"Requests/sec:\s+([\d.]+)", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    errors = (int(non_2xx.group(1)) if non_2xx else 0) + (sum(map(int, socket.groups())) if socket else 0)
    return LoadResult(
        clients=clients, seconds=seconds, requests=int(requests.group(1)) if requests else 0,
        per_second=float(per_second.group(1)) if per_second else 0.0,
        p50_ms=latency("50"), p99_ms=latency("99"), errors=errors,
    )  # fmt: skip


class Client:
    """One keep-alive HTTP/1.1 connection, as a browser or an API client keeps one, written
    on a bare socket: a timing should be the server's and the network's, not the client's."""

    def __init__(self, base: str) -> None:
        parsed = urlparse(base)
        self.host, self.port = parsed.hostname or "127.0.0.1", parsed.port or 80
        self.cookies: dict[str, str] = {}
        self._connect()

    def _connect(self) -> None:
        self.sock = socket.create_connection((self.host, self.port), timeout=120)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""

    def keep_alive(self) -> None:
        """Make sure the connection is open before a timed request: the server closes one
        left idle (gunicorn after 2 s), and a browser would have opened a new one by then."""
        try:
            self._exchange("GET", "/healthz", b"", {})
        except (ConnectionError, OSError):
            self.sock.close()
            self._connect()

    def request(self, method: str, path: str, body: dict[str, Any] | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any] | None, float]:  # fmt: skip
        """Status, the JSON answered (if any), and the milliseconds from sending the request
        to its last byte."""
        data = json.dumps(body).encode() if body is not None else b""
        content_type = {"Content-Type": "application/json"} if body is not None else {}
        status, response_headers, raw, elapsed = self._exchange(method, path, data, {**content_type, **(headers or {})})
        is_json = response_headers.get("content-type", "").startswith("application/json")
        return status, json.loads(raw) if is_json else None, elapsed

    def post_bytes(self, path: str, data: bytes, content_type: str) -> tuple[int, bytes]:
        """A POST of a body already encoded (a form, a file upload): the status and the body."""
        status, _, raw, _ = self._exchange("POST", path, data, {"Content-Type": content_type})
        return status, raw

    def sign_in(self, username: str, password: str) -> None:
        """Sign in through the admin's login form, as staff do: asks then act as that user
        (the cache-bypass header and the full trace are for staff)."""
        _, _, page, _ = self._exchange("GET", "/admin/login/", b"", {})
        token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        if token is None:
            raise RuntimeError("the admin login page has no CSRF token")
        form = urlencode({"csrfmiddlewaretoken": token.group(1).decode(), "username": username,
                          "password": password, "next": "/admin/"}).encode()  # fmt: skip
        status, _, _, _ = self._exchange("POST", "/admin/login/", form,
                                         {"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
        if status != 302 or "sessionid" not in self.cookies:
            raise RuntimeError(f"signing in as {username} failed ({status})")

    def _exchange(self, method: str, path: str, data: bytes,
                  headers: dict[str, str]) -> tuple[int, dict[str, str], bytes, float]:  # fmt: skip
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}", f"Content-Length: {len(data)}"]
        if self.cookies:
            lines.append("Cookie: " + "; ".join(f"{name}={value}" for name, value in self.cookies.items()))
            if "csrftoken" in self.cookies and method == "POST":
                lines.append(f"X-CSRFToken: {self.cookies['csrftoken']}")
        lines += [f"{name}: {value}" for name, value in headers.items()]
        message = ("\r\n".join(lines) + "\r\n\r\n").encode() + data
        started = time.perf_counter()
        self.sock.sendall(message)
        status, response_headers, raw = self._response()
        elapsed = (time.perf_counter() - started) * 1000
        for cookie in response_headers.get("set-cookie", []):
            name, _, rest = cookie.partition("=")
            self.cookies[name.strip()] = rest.split(";", 1)[0]
        return status, {k: v for k, v in response_headers.items() if k != "set-cookie"}, raw, elapsed

    def _response(self) -> tuple[int, dict[str, str], bytes]:
        while b"\r\n\r\n" not in self.buffer:
            self._receive()
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers: dict[str, Any] = {"set-cookie": []}
        for line in header_lines:
            name, _, value = line.partition(":")
            if name.strip().lower() == "set-cookie":
                headers["set-cookie"].append(value.strip())
            else:
                headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(self.buffer) < length:
            self._receive()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return int(status_line.split()[1]), headers, body

    def _receive(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        self.buffer += chunk

    def ask(
        self, question: str, cache_control: str = "", *, collections: list[str] | None = None
    ) -> tuple[dict[str, Any], float]:
        headers = {"Cache-Control": cache_control} if cache_control else {}
        body: dict[str, Any] = {"question": question, **({"collections": collections} if collections else {})}
        status, payload, elapsed = self.request("POST", "/api/ask", body, headers)
        if status != 200 or payload is None:
            raise RuntimeError(f"/api/ask answered {status}: {payload}")
        return payload, elapsed

    def close(self) -> None:
        self.sock.close()


class Sampler:
    """Samples a number every `every` seconds in a thread (the connections PostgreSQL holds)."""

    def __init__(self, read: Any, every: float = 0.2) -> None:
        self.read, self.every = read, every
        self.values: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.values.append(int(self.read()))
            self._stop.wait(self.every)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")
