from __future__ import annotations

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import permission_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.middleware import HtmxDetails

from documents.forms import UploadForm
from documents.models import Collection, Document
from documents.selectors import documents_with_chunk_counts
from documents.services import DocumentNotFailedError, document_delete, document_retry, documents_upload


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


RETRIED_NOTES = {"upload", "button"}  # how a failed document came to be ingested again; the row words it


@staff_member_required
@require_http_methods(["GET", "POST"])
def upload(request: HtmxHttpRequest) -> HttpResponse:
    form = UploadForm(request.POST or None, request.FILES or None)
    outcomes = []
    if request.method == "POST" and form.is_valid():
        outcomes = documents_upload(collection=form.cleaned_data["collection"], files=form.cleaned_data["uploads"])
        form = UploadForm(initial={"collection": form.cleaned_data["collection"]})
    context = {"form": form, "outcomes": outcomes, "has_collections": Collection.objects.exists()}
    template = "documents/_upload_results.html" if request.htmx else "documents/upload.html"
    status = 422 if form.errors else 200  # 422: the status the page's htmx swaps in
    return render(request, template, context, status=status)


@staff_member_required
@require_GET
def progress(request: HtmxHttpRequest, document_id: int) -> HttpResponse:
    document = _document_row(document_id)
    # Carried by the row's polling, so its note stays once the ingestion ends.
    retried = request.GET.get("retried", "")
    context = {"document": document, "retried": retried if retried in RETRIED_NOTES else ""}
    return render(request, "documents/_document_row.html", context)


@staff_member_required
@permission_required("documents.change_document", raise_exception=True)  # as in the admin
@require_POST
def retry(request: HtmxHttpRequest, document_id: int) -> HttpResponse:
    try:
        document = document_retry(document_id=document_id)
    except Document.DoesNotExist:
        raise Http404 from None
    except DocumentNotFailedError as exc:
        return _refused(request, document_id, str(exc))
    if not request.htmx:
        messages.success(request, f"“{document.title}” is queued for ingestion again.")
        return redirect("documents:upload")
    return render(
        request, "documents/_document_row.html", {"document": _document_row(document_id), "retried": "button"}
    )


@staff_member_required
@permission_required("documents.delete_document", raise_exception=True)
@require_POST
def delete(request: HtmxHttpRequest, document_id: int) -> HttpResponse:
    try:
        document = document_delete(document_id=document_id)
    except Document.DoesNotExist:
        raise Http404 from None
    except DocumentNotFailedError as exc:
        return _refused(request, document_id, str(exc))
    message = f"Deleted “{document.title}” ({document.original_filename})."
    if not request.htmx:
        messages.success(request, message)
        return redirect("documents:upload")
    return render(request, "documents/_document_deleted.html", {"document_id": document_id, "message": message})


def _document_row(document_id: int) -> Document:
    return get_object_or_404(documents_with_chunk_counts().select_related("collection"), pk=document_id)


def _refused(request: HtmxHttpRequest, document_id: int, message: str) -> HttpResponse:
    """The document's current row with why nothing was done (it changed since the page showed it)."""
    if not request.htmx:
        messages.error(request, message)
        return redirect("documents:upload")
    context = {"document": _document_row(document_id), "refusal": message}
    return render(request, "documents/_document_row.html", context, status=422)
