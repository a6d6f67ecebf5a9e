from __future__ import annotations

from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET, require_http_methods

from documents.forms import UploadForm
from documents.models import Collection
from documents.selectors import documents_with_chunk_counts
from documents.services import documents_upload


@staff_member_required
@require_http_methods(["GET", "POST"])
def upload(request: HttpRequest) -> HttpResponse:
    form = UploadForm(request.POST or None, request.FILES or None)
    outcomes = []
    if request.method == "POST" and form.is_valid():
        outcomes = documents_upload(collection=form.cleaned_data["collection"], files=form.cleaned_data["uploads"])
        form = UploadForm(initial={"collection": form.cleaned_data["collection"]})
    context = {"form": form, "outcomes": outcomes, "has_collections": Collection.objects.exists()}
    template = "documents/_upload_results.html" if request.htmx else "documents/upload.html"  # type: ignore[attr-defined]
    status = 400 if form.errors else 200
    return render(request, template, context, status=status)


@staff_member_required
@require_GET
def progress(request: HttpRequest, document_id: int) -> HttpResponse:
    document = get_object_or_404(documents_with_chunk_counts().select_related("collection"), pk=document_id)
    return render(request, "documents/_document_row.html", {"document": document})
