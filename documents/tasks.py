from __future__ import annotations

from celery import shared_task

from documents.services import document_ingest


@shared_task(acks_late=True)
def ingest_document(document_id: int) -> None:
    document_ingest(document_id=document_id)
