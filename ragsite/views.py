"""The project's own view: a constant answer that touches no database and no cache."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is up and serving. Also the floor of the benchmark: a Django view
    through the whole middleware stack, and nothing else."""
    return JsonResponse({"status": "ok"})
