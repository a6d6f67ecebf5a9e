"""Server-Timing on every response: the time Django spent on it, so a client (a browser's
network panel, the benchmarks) can tell server time from the network's; and the same
time, with the status, in the metrics."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponseBase

from ragsite import metrics


class ServerTimingMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        started = time.perf_counter()
        response = self.get_response(request)
        # A streamed response is timed to its headers, not to its last byte.
        seconds = time.perf_counter() - started
        response["Server-Timing"] = f"app;dur={seconds * 1000:.2f}"
        metrics.requests.labels(request.method or "", str(response.status_code)).inc()
        metrics.request_seconds.labels(request.method or "").observe(seconds)
        return response
