"""`manage.py reembed [--collection NAME] [--queue]`: embed again the documents whose chunks
another model embedded (or an older chunker made), after a change of the embedding
provider. A model of the same space (documents.embedding) replaces each document's chunks
as it goes, in one transaction. A model of another space embeds beside the old vectors,
which keep answering until every document of the collection has its new chunks; then the
collection switches, at once."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from documents.embedding import get_embedder
from documents.models import Collection
from documents.selectors import documents_outdated
from documents.services import collection_space_settle, document_reingest, documents_ingest


class Command(BaseCommand):
    help = "Embed again, with the configured model, the documents another model embedded."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--collection", help="Only this collection (by name); every collection by default.")
        parser.add_argument(
            "--queue", action="store_true", help="Hand the documents to the Celery workers instead of doing it here."
        )

    def handle(self, *args: Any, collection: str | None, queue: bool, **options: Any) -> None:
        collections = None
        if collection is not None:
            collections = Collection.objects.filter(name=collection)
            if not collections.exists():
                raise CommandError(f"No collection is named {collection!r}.")
        outdated = list(documents_outdated(collections=collections))
        model = get_embedder().model_name
        # Searched in another space: they switch as their last document is embedded again.
        switching = list(
            (collections if collections is not None else Collection.objects.all())
            .exclude(embedding_space__in=["", get_embedder().space])
            .order_by("name")
        )
        if not outdated:
            self.stdout.write(f"Every document is embedded by {model} already.")
            self._settle(switching)
            return
        self.stdout.write(f"{len(outdated)} document(s) to embed again with {model}.")
        if queue:
            for document in outdated:
                document_reingest(document_id=document.pk)
            self.stdout.write(f"Queued {len(outdated)} document(s) for the workers; each collection switches "
                              "to the new model when its last document is done.")  # fmt: skip
            return
        started, chunks, failed = time.monotonic(), 0, 0
        by_id = {document.pk: document for document in outdated}
        for number, (document_id, result) in enumerate(documents_ingest(document_ids=list(by_id)), start=1):
            document = by_id[document_id]
            if result is None:
                failed += 1
                document.refresh_from_db(fields=["failure_reason"])
                self.stderr.write(f"{document}: {document.failure_reason}")
                continue
            chunks += result.chunks
            rate = chunks / max(time.monotonic() - started, 1e-9)
            self.stdout.write(f"[{number}/{len(outdated)}] {document}: {result.chunks} chunks ({rate:.1f} chunks/s)")
        self.stdout.write(f"Done: {len(outdated) - failed} embedded again, {failed} failed, {chunks} chunks.")
        self._settle(switching)

    def _settle(self, switching: list[Collection]) -> None:
        """Each collection that was searched in another space switches, unless a document holds it back."""
        embedder = get_embedder()
        for collection in switching:
            if collection_space_settle(collection_id=collection.pk):
                self.stdout.write(f"{collection}: now searched with {embedder.model_name} ({embedder.space}).")
            else:
                self.stdout.write(
                    f"{collection}: still searched with its previous model ({collection.embedding_space}) until "
                    f"every document is embedded by {embedder.model_name}: re-ingest or delete those that failed."
                )
