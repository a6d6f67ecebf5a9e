"""A request id on every log line, carried from the web request into the Celery tasks it
queues, so one upload or one question can be followed from the web server to the worker.

The id is the caller's `X-Request-ID` when it sends a sane one (a proxy's), else a new
one; it goes back in the response's `X-Request-ID`. LOG_FORMAT=json writes one JSON object
per line for log collectors.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any, cast

from django.http import HttpRequest, HttpResponseBase, StreamingHttpResponse

HEADER = "X-Request-ID"
SANE = re.compile(r"[A-Za-z0-9._-]{1,64}")
NONE = "-"

current: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default=NONE)


class RequestIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        asked = request.headers.get(HEADER, "")
        request_id = asked if SANE.fullmatch(asked) else uuid.uuid4().hex
        token = current.set(request_id)
        try:
            response = self.get_response(request)
            response[HEADER] = request_id
            if isinstance(response, StreamingHttpResponse) and not response.is_async:  # made after this returns
                response.streaming_content = _under(request_id, cast(Iterator[bytes], response.streaming_content))
            return response
        finally:
            current.reset(token)


def _under(request_id: str, content: Iterator[bytes]) -> Iterator[bytes]:
    """A streamed body made under its request's id: what it logs names the request."""
    token = current.set(request_id)
    try:
        yield from content
    finally:
        current.reset(token)


class RequestIdFilter(logging.Filter):
    """Puts the current request id on every record, as `request_id`."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", NONE),
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def task_headers_add(headers: dict[str, Any] | None = None, **kwargs: Any) -> None:
    """Celery's before_task_publish: the queuing request's id travels with the task."""
    if headers is not None and current.get() != NONE:
        headers["request_id"] = current.get()


def task_started(task: Any = None, **kwargs: Any) -> None:
    """Celery's task_prerun: the task logs under the id of the request that queued it."""
    request_id = getattr(task.request, "request_id", None) if task is not None else None
    current.set(request_id if isinstance(request_id, str) and SANE.fullmatch(request_id) else NONE)
