from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from documents.models import Collection, Document
from documents.parsing import CONTENT_TYPES
from documents.selectors import documents_outdated
from documents.services import (
    DuplicateDocumentError,
    UploadError,
    document_create,
    document_reingest,
    documents_ingest,
)

UNFINISHED = (Document.Status.PENDING, Document.Status.PROCESSING)


class Command(BaseCommand):
    help = "Import files, or every supported file under folders, into a collection."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="+", type=Path)
        parser.add_argument("--collection", required=True, help="Collection name; created when missing.")
        parser.add_argument("--description", default="", help="Description for a new collection.")
        parser.add_argument(
            "--queue", action="store_true", help="Hand ingestion to the Celery workers instead of doing it here."
        )

    def handle(
        self, *args: Any, paths: list[Path], collection: str, description: str, queue: bool, **options: Any
    ) -> None:
        files = sorted(self._files(paths))
        if not files:
            raise CommandError(f"No {', '.join(CONTENT_TYPES)} files under {', '.join(map(str, paths))}.")
        target, created = Collection.objects.get_or_create(name=collection, defaults={"description": description})
        if created:
            self.stdout.write(f"Created collection {target}.")
        counts: Counter[str] = Counter()
        started = time.monotonic()
        paths_by_id: dict[int, Path] = {}

        def to_ingest() -> Iterator[int]:  # read as ingestion makes room: files are imported as it goes
            for path, document in self._import(files, target, queue, counts):
                paths_by_id[document.pk] = path
                yield document.pk

        for document_id, result in documents_ingest(document_ids=to_ingest()):
            path = paths_by_id[document_id]
            if result is None:
                counts["failed"] += 1
                reason = Document.objects.values_list("failure_reason", flat=True).get(pk=document_id)
                self.stderr.write(f"{path}: {reason}")
            else:
                counts["chunks"] += result.chunks
                self.stdout.write(f"{path.name}: {result.chunks} chunks")
        elapsed = time.monotonic() - started
        summary = f"{target}: {counts['added']} added, {counts['skipped']} already present, {counts['failed']} failed"
        if counts["upgraded"]:
            summary += f", {counts['upgraded']} re-ingested to the current chunk format"
        if counts["unfinished"]:
            summary += f", {counts['unfinished']} left unfinished before and ingested now"
        if queue:
            summary += "; ingestion queued for the workers"
        elif counts["chunks"]:
            chunks = counts["chunks"]
            summary += f"; {chunks} chunks in {elapsed:.1f} s ({chunks / elapsed:.1f} chunks/s)"
        self.stdout.write(self.style.SUCCESS(summary + "."))

    def _import(
        self, files: list[Path], target: Collection, queue: bool, counts: Counter[str]
    ) -> Iterator[tuple[Path, Document]]:
        """Each file into the collection (queued, with --queue); the documents to ingest here."""
        taken: set[int] = set()  # this run's: another copy of a file is only already present
        for path in files:
            if not path.is_file():
                counts["failed"] += 1
                self.stderr.write(f"{path}: not a regular file")
                continue
            try:
                data = path.read_bytes()
            except OSError as exc:
                counts["failed"] += 1
                self.stderr.write(f"{path}: could not be read ({exc.strerror or exc})")
                continue
            try:
                document = document_create(collection=target, filename=path.name, data=data, queue=queue)
            except DuplicateDocumentError as exc:
                document = exc.existing
                if not queue and document.status in UNFINISHED and document.pk not in taken:
                    # A run stopped mid-way leaves documents so, and nothing else takes them
                    # up: ingested here. (With --queue, they are the workers' queue's.)
                    counts["unfinished"] += 1
                elif _outdated(document):
                    # Ingested again; the previous chunks answer until then.
                    counts["upgraded"] += 1
                    if queue:
                        document_reingest(document_id=document.pk)
                        continue
                else:
                    counts["skipped"] += 1
                    continue
            except UploadError as exc:
                counts["failed"] += 1
                self.stderr.write(f"{path}: {exc}")
                continue
            else:
                counts["added"] += 1
            if not queue:
                taken.add(document.pk)
                yield path, document

    def _files(self, paths: list[Path]) -> list[Path]:
        found: list[Path] = []
        for path in paths:
            if path.is_dir():
                found.extend(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in CONTENT_TYPES)
            elif path.exists():  # a file, or something that is not one: handle() says which
                found.append(path)
            else:
                raise CommandError(f"{path} does not exist.")
        return found


def _outdated(document: Document) -> bool:
    """Chunked by an older chunker or embedded by another model: ingested again, so that
    importing the same files upgrades a collection (a change of the embedding provider too)."""
    return documents_outdated().filter(pk=document.pk).exists()
