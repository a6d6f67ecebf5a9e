"""A small OpenAI-compatible HTTP server for tests and benchmarks.

Deterministic answers, configurable latency, injected failures, and a count of the
calls it served. Run it alone with `python -m openai_compat.server --port 8001`.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
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
        self.latency = latency  # seconds before every answer
        self.route_latency: dict[str, float] = {}  # and more per route, e.g. {"/v1/embeddings": 0.3}
        self._successes_left: int | None = None  # see fail_after()
        self.chunk_delay = 0.0  # seconds between streamed pieces
        self.finish_reason: str | None = "stop"  # how streamed answers end ("length": cut off)
        self.send_usage = True  # in streams that ask for it (some servers never send it)
        self.calls: Counter[str] = Counter()
        self.connections = 0  # TCP connections accepted: clients that reuse theirs open few
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
            self.latency = 0.0
            self.route_latency = {}
            self.chunk_delay = 0.0
            self.finish_reason = "stop"
            self.send_usage = True
            self.connections = 0

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

    def chat_answer(self, body: dict[str, Any]) -> tuple[str, int]:
        """A deterministic answer citing the first passage of the prompt, and the prompt's token count."""
        prompt = "\n".join(str(m.get("content", "")) for m in body["messages"])
        passage = re.search(r"^\[1\] [^\n]*\n(.+?)(?:\n\n\[\d+\]|\n\nQuestion:|$)", prompt, re.S | re.M)
        if passage:
            first_sentence = re.split(r"(?<=[.!?])\s", passage.group(1).strip(), maxsplit=1)[0]
            answer = f"According to the passages, {first_sentence} [1]"
        else:
            answer = "The passages do not say."
        return answer, len(WORD.findall(prompt))

    def chat_completion(self, body: dict[str, Any]) -> dict[str, Any]:
        answer, prompt_tokens = self.chat_answer(body)
        completion_tokens = len(WORD.findall(answer))
        return {
            "id": "chatcmpl-compat",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", ""),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }

    def chat_completion_chunks(self, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        answer, prompt_tokens = self.chat_answer(body)
        base = {"id": "chatcmpl-compat", "object": "chat.completion.chunk", "created": int(time.time()),
                "model": body.get("model", "")}  # fmt: skip
        pieces = re.findall(r"\S+\s*", answer)
        yield {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}
        for piece in pieces:
            yield {**base, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
        yield {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": self.finish_reason}]}
        if (body.get("stream_options") or {}).get("include_usage") and self.send_usage:
            completion_tokens = len(WORD.findall(answer))
            usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                     "total_tokens": prompt_tokens + completion_tokens}  # fmt: skip
            yield {**base, "choices": [], "usage": usage}

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                with server._lock:
                    server.connections += 1

            def handle(self) -> None:
                # A client that hangs up on a kept-alive connection (a timeout, a process gone).
                with contextlib.suppress(ConnectionResetError, BrokenPipeError):
                    super().handle()

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except json.JSONDecodeError:
                    return self._send(400, {"error": {"message": "Body is not JSON.", "type": "invalid_request_error"}})
                route = {"/v1/embeddings": server.embeddings, "/v1/chat/completions": server.chat_completion}.get(
                    self.path
                )
                if route is None:
                    return self._send(404, {"error": {"message": f"No route {self.path}.", "type": "not_found"}})
                with server._lock:
                    server.calls[self.path] += 1
                    server.last_request = body
                if delay := server.latency + server.route_latency.get(self.path, 0.0):
                    time.sleep(delay)
                if server._take_failure():
                    return self._send(500, {"error": {"message": "Injected failure.", "type": "server_error"}})
                if route == server.chat_completion and body.get("stream"):
                    return self._stream(body)
                try:
                    return self._send(200, route(body))
                except (KeyError, TypeError, ValueError) as exc:
                    return self._send(
                        400, {"error": {"message": f"Bad request: {exc}", "type": "invalid_request_error"}}
                    )

            def _stream(self, body: dict[str, Any]) -> None:
                # Chunked, as OpenAI's API streams: the connection stays open for the next call.
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for chunk in server.chat_completion_chunks(body):
                    self._chunk(f"data: {json.dumps(chunk)}\n\n".encode())
                    if server.chunk_delay:
                        time.sleep(server.chunk_delay)
                # The last event and the end of the body in one write, as servers do: a client
                # that stops reading at [DONE] has the whole response and keeps the connection.
                done = b"data: [DONE]\n\n"
                self.wfile.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(done), done))
                self.wfile.flush()

            def _chunk(self, data: bytes) -> None:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()

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
    parser.add_argument("--embedding-latency", type=float, default=0.0, help="Seconds more per embedding call.")
    parser.add_argument("--completion-latency", type=float, default=0.0, help="Seconds more per completion.")
    parser.add_argument("--token-delay", type=float, default=0.0, help="Seconds between streamed pieces.")
    args = parser.parse_args()
    server = OpenAICompatServer(host=args.host, port=args.port, latency=args.latency)
    server.route_latency = {"/v1/embeddings": args.embedding_latency, "/v1/chat/completions": args.completion_latency}
    server.chunk_delay = args.token_delay
    server.start()
    print(f"OpenAI-compatible server at {server.base_url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
