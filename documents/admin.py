from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.defaultfilters import filesizeformat
from django.utils.html import format_html

from documents.forms import DocumentAdminForm
from documents.models import Chunk, Collection, Document
from documents.services import document_accept, document_reingest, document_replace_source
from ragcache.client import CacheUnavailable
from ragcache.invalidation import invalidate_document


class ChunkInline(admin.TabularInline):
    model = Chunk
    fields = readonly_fields = ("ordinal", "token_count", "text", "embedding_model")
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Chunk)
class ChunkAdmin(admin.ModelAdmin):
    """Read-only: chunks change only through ingestion. The cache panel links here."""

    list_display = ["__str__", "token_count", "embedding_model"]
    list_select_related = ["document"]
    search_fields = ["text"]
    fields = ("document", "ordinal", "token_count", "embedding_model", "content_hash", "text")
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[Chunk]:
        return super().get_queryset(request).defer("embedding", "document__source", "document__text")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    # The delete permission stays as usual, since deleting a document deletes its chunks;
    # a chunk alone is never deleted here (its collection's generation would not move).
    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        return {}

    def delete_view(self, request: HttpRequest, object_id: str, extra_context: Any = None) -> HttpResponse:
        raise PermissionDenied("Chunks are deleted with their document.")

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), "show_delete": False})


@admin.register(Collection)
class CollectionAdmin(admin.ModelAdmin):
    list_display = ["name", "document_count", "embedding_space", "created_at"]
    search_fields = ["name"]
    readonly_fields = ["embedding_space"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Collection]:
        return super().get_queryset(request).annotate(document_count=Count("documents"))

    @admin.display(description="Documents", ordering="document_count")
    def document_count(self, collection: Collection) -> int:
        return collection.document_count  # type: ignore[attr-defined]


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin):
    form = DocumentAdminForm
    list_display = ["title", "collection", "status_display", "chunk_count", "size_display", "updated_at"]
    list_filter = ["status", "collection"]
    search_fields = ["title", "original_filename"]
    actions = ["reingest", "flush_cache"]
    inlines = [ChunkInline]
    readonly_fields = [
        "status_display", "progress", "original_filename", "content_type", "size_display",
        "content_hash", "chunk_count", "created_at", "ingested_at", "text",
    ]  # fmt: skip

    def get_queryset(self, request: HttpRequest) -> QuerySet[Document]:
        return super().get_queryset(request).defer("source").annotate(chunk_count=Count("chunks"))

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return [(None, {"fields": ["collection", "title", "upload"]})]
        return [
            (None, {"fields": ["collection", "title", "upload"]}),
            ("Ingestion", {"fields": ["status_display", "progress", "chunk_count", "ingested_at"]}),
            ("File", {"fields": ["original_filename", "content_type", "size_display", "content_hash", "created_at"]}),
            ("Extracted text", {"fields": ["text"], "classes": ["collapse"]}),
        ]

    def get_inlines(self, request: HttpRequest, obj: Any) -> list[Any]:
        return [ChunkInline] if obj is not None else []

    @admin.display(description="Status", ordering="status")
    def status_display(self, document: Document) -> str:
        if document.status == Document.Status.FAILED:
            return format_html("<strong>Failed</strong>: {}", document.failure_reason)
        if document.status == Document.Status.PROCESSING:
            return f"Processing ({document.progress}%)"
        return document.get_status_display()

    @admin.display(description="Chunks", ordering="chunk_count")
    def chunk_count(self, document: Document) -> int:
        return document.chunk_count  # type: ignore[attr-defined]

    @admin.display(description="Size", ordering="size")
    def size_display(self, document: Document) -> str:
        return filesizeformat(document.size)

    def save_model(self, request: HttpRequest, obj: Document, form: Any, change: bool) -> None:
        data = form.upload_data
        upload = form.cleaned_data.get("upload")
        if not change:
            accepted = document_accept(
                collection=obj.collection, filename=upload.name, data=data, title=form.cleaned_data["title"]
            )
            obj.pk = accepted.document.pk
            obj.refresh_from_db()
            if accepted.retried:
                messages.info(
                    request, f"“{obj.title}” had failed; it has this file now and its ingestion is queued again."
                )
            else:
                messages.info(request, "Ingestion is queued; the status column shows its progress.")
        elif data is not None:
            document_replace_source(document=obj, filename=upload.name, data=data)
            messages.info(request, "New content saved; re-ingestion is queued.")
        else:
            obj.save(update_fields=["collection", "title", "updated_at"])

    @admin.action(description="Re-ingest selected documents")
    def reingest(self, request: HttpRequest, queryset: QuerySet[Document]) -> None:
        ids = list(queryset.values_list("pk", flat=True))
        for document_id in ids:
            document_reingest(document_id=document_id)
        self.message_user(request, f"Queued {len(ids)} document(s) for re-ingestion.", messages.SUCCESS)

    @admin.action(description="Flush cached retrievals and answers that cite the selected documents")
    def flush_cache(self, request: HttpRequest, queryset: QuerySet[Document]) -> None:
        total = 0
        for done, document in enumerate(queryset.only("pk", "title")):
            try:
                deleted = invalidate_document(document.pk, fail_open=False)
            except CacheUnavailable:
                rest = f"the documents after the first {done} were not flushed" if done else "nothing was flushed"
                self.message_user(request, f"Redis is unreachable: {rest}.", messages.ERROR)
                return
            total += deleted
            self.log_change(request, document, f"Flushed the cache entries that cite it ({deleted} keys touched).")
        self.message_user(request, f"Deleted {total} cache entr{'y' if total == 1 else 'ies'}.", messages.SUCCESS)
