"""Keep the speed layer exact: a committed change to a document bumps its collection's
generation (in the same transaction) and deletes the cache entries that cited it; a change
to a collection bumps the catalog's version, and the new catalog is published on commit."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete, post_save, pre_save
from django.dispatch import receiver

from documents.models import Collection, Document
from documents.services import catalog_bump, collections_bump, document_moved
from ragcache.invalidation import invalidate_document

# Saves that only report ingestion progress change nothing a reader can see.
PROGRESS_FIELDS = frozenset({"status", "progress", "failure_reason", "updated_at"})


@receiver(pre_save, sender=Document)
def remember_collection(sender: type[Document], instance: Document, update_fields: Any = None, **kwargs: Any) -> None:
    if update_fields is not None and set(update_fields) <= PROGRESS_FIELDS:
        return
    if instance.pk is not None and not instance._state.adding:
        instance._previous_collection_id = (  # type: ignore[attr-defined]
            Document.objects.filter(pk=instance.pk).values_list("collection_id", flat=True).first()
        )


@receiver(post_save, sender=Document)
def document_saved(sender: type[Document], instance: Document, update_fields: Any = None, **kwargs: Any) -> None:
    if update_fields is not None and set(update_fields) <= PROGRESS_FIELDS:
        return
    collection_ids = {instance.collection_id}
    previous = getattr(instance, "_previous_collection_id", None)
    if previous and previous != instance.collection_id:  # moved between collections
        collection_ids.add(previous)
        document_moved(document_id=instance.pk, collection_id=instance.collection_id)
    document_changed(instance.pk, collection_ids)


@receiver(post_delete, sender=Document)
def document_deleted(sender: type[Document], instance: Document, **kwargs: Any) -> None:
    document_changed(instance.pk, {instance.collection_id})


def document_changed(document_id: int, collection_ids: set[int]) -> None:
    # On commit, the entries citing the document go first, then the new generations are
    # published: whatever is cached after the publish (warming's answers) stays.
    transaction.on_commit(lambda: invalidate_document(document_id), robust=True)
    collections_bump(collection_ids=collection_ids)


@receiver(post_save, sender=Collection)
@receiver(post_delete, sender=Collection)
def collection_changed(sender: type[Collection], instance: Collection, **kwargs: Any) -> None:
    catalog_bump()
