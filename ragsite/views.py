"""The project's own views: liveness, readiness, metrics."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST

from ragsite import metrics
from ragsite.health import readiness


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is up and serving. Also the floor of the benchmark: a Django view
    through the whole middleware stack, and nothing else."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Ready to serve: 200 when it is, degraded included (Redis gone: answers still come,
    more slowly); 503 when the database or every worker is gone."""
    found = readiness()
    return JsonResponse(found, status=503 if found["status"] == "unavailable" else 200)


@never_cache
@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus's text format, for staff or a scraper with the token; others learn nothing."""
    token = settings.METRICS_TOKEN
    bearer = request.headers.get("Authorization", "")
    # As bytes: compare_digest refuses a str with non-ASCII characters (a header may hold any).
    expected = f"Bearer {token}".encode()
    allowed = request.user.is_staff or (token and secrets.compare_digest(bearer.encode(errors="replace"), expected))
    if not allowed:
        raise Http404
    return HttpResponse(metrics.exposition(), content_type=CONTENT_TYPE_LATEST)
