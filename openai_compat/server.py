"""A small OpenAI-compatible HTTP server for tests and benchmarks.

Deterministic answers, configurable latency, injected failures, and a count of the
calls it served. Run it alone with `python -m openai_compat.server --port 8001`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import re
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

WORD = re.compile(r"\w+")


def hashed_embedding(text: str, dimensions: int) -> list[float]:
    """Feature hashing of the words: texts that share words point the same way."""
    vector = [0.0] * dimensions
    for word in WORD.findall(text.lower()):
        digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
        index = int.from_bytes(digest[:4], "little") % dimensions
        vector[index] += 1.0 if digest[4] & 1 else -1.0
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    if not any(vector):
        vector[0] = 1.0
    return [v / norm for v in vector]


class OpenAICompatServer:
    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, latency: float = 0.0) -> None:
        self.latency = latency
        self._successes_left: int | None = None  # see fail_after()
        self.calls: Counter[str] = Counter()
        self.inputs_embedded = 0
        self.last_request: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer((host, port), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def start(self) -> OpenAICompatServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self.inputs_embedded = 0
            self._successes_left = None

    def fail_after(self, successes: int) -> None:
        """Answer `successes` more requests, then fail every one with HTTP 500 until reset()."""
        with self._lock:
            self._successes_left = successes

    def _take_failure(self) -> bool:
        with self._lock:
            if self._successes_left is None:
                return False
            if self._successes_left > 0:
                self._successes_left -= 1
                return False
            return True

    def embeddings(self, body: dict[str, Any]) -> dict[str, Any]:
        inputs = body["input"]
        inputs = [inputs] if isinstance(inputs, str) else list(inputs)
        dimensions = int(body.get("dimensions") or 1536)
        with self._lock:
            self.inputs_embedded += len(inputs)
        tokens = sum(len(WORD.findall(text)) for text in inputs)
        return {
            "object": "list",
            "model": body.get("model", ""),
            "data": [
                {"object": "embedding", "index": i, "embedding": hashed_embedding(text, dimensions)}
                for i, text in enumerate(inputs)
            ],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except json.JSONDecodeError:
                    return self._send(400, {"error": {"message": "Body is not JSON.", "type": "invalid_request_error"}})
                route = {"/v1/embeddings": server.embeddings}.get(self.path)
                if route is None:
                    return self._send(404, {"error": {"message": f"No route {self.path}.", "type": "not_found"}})
                with server._lock:
                    server.calls[self.path] += 1
                    server.last_request = body
                if server.latency:
                    time.sleep(server.latency)
                if server._take_failure():
                    return self._send(500, {"error": {"message": "Injected failure.", "type": "server_error"}})
                try:
                    return self._send(200, route(body))
                except (KeyError, TypeError, ValueError) as exc:
                    return self._send(
                        400, {"error": {"message": f"Bad request: {exc}", "type": "invalid_request_error"}}
                    )

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--latency", type=float, default=0.0, help="Seconds to wait before each answer.")
    args = parser.parse_args()
    server = OpenAICompatServer(host=args.host, port=args.port, latency=args.latency).start()
    print(f"OpenAI-compatible server at {server.base_url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
