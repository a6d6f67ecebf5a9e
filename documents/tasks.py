from __future__ import annotations

from celery import shared_task

from documents.services import document_ingest, document_ingest_attempt


# acks_late: a worker that dies mid-way leaves the task to be delivered again (after the
# broker's visibility timeout); document_ingest_attempt bounds how often.
@shared_task(acks_late=True, reject_on_worker_lost=True)
def ingest_document(document_id: int) -> None:
    if document_ingest_attempt(document_id=document_id):
        document_ingest(document_id=document_id)
