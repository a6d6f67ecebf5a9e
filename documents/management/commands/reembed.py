"""`manage.py reembed [--collection NAME] [--queue]`: embed again the documents whose chunks
another model embedded (or an older chunker made), after a change of the embedding
provider. Each document keeps answering from its previous chunks until its new ones
replace them, in one transaction."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from documents.embedding import get_embedder
from documents.models import Collection
from documents.selectors import documents_outdated
from documents.services import document_ingest, document_reingest


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
        if not outdated:
            self.stdout.write(f"Every document is embedded by {model} already.")
            return
        self.stdout.write(f"{len(outdated)} document(s) to embed again with {model}.")
        started, chunks, failed = time.monotonic(), 0, 0
        for number, document in enumerate(outdated, start=1):
            if queue:
                document_reingest(document_id=document.pk)
                continue
            result = document_ingest(document_id=document.pk)
            if result is None:
                failed += 1
                document.refresh_from_db(fields=["failure_reason"])
                self.stderr.write(f"{document}: {document.failure_reason}")
                continue
            chunks += result.chunks
            rate = chunks / max(time.monotonic() - started, 1e-9)
            self.stdout.write(f"[{number}/{len(outdated)}] {document}: {result.chunks} chunks ({rate:.1f} chunks/s)")
        if queue:
            self.stdout.write(f"Queued {len(outdated)} document(s) for the workers.")
        else:
            self.stdout.write(f"Done: {len(outdated) - failed} embedded again, {failed} failed, {chunks} chunks.")
