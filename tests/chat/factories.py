from __future__ import annotations

from documents.models import Collection, Document
from documents.services import document_create, document_ingest

TEA = (
    "Green tea should be brewed with water at eighty degrees for two minutes. "
    "Boiling water scalds the leaves and makes the tea bitter."
)
BIKE = "To fix a flat bicycle tyre, remove the wheel, find the puncture and apply a rubber patch."
TAXES = "The annual tax return is due on the last day of April; late filing incurs a penalty."
STARS = "Neutron stars are the collapsed cores of massive stars, denser than any atomic nucleus."
# A page that shares only a rare keyword (an error code) with a question about it ...
RELEASE_NOTES = (
    "The release notes for version 3.2 cover the new storage layout, the faster start-up, and the changed "
    "defaults for logging. Administrators should back up their data before upgrading, read the migration "
    "guide, and test the upgrade on a staging machine first. The upgrade tool reports E4127 when the disk is "
    "full. After the upgrade, old log files are compressed and moved to the archive folder."
)
# ... and pages that read like the question without the keyword, which embeddings prefer.
ERRORS = [
    "What does error E1001 mean? It means the configuration file could not be parsed.",
    "What does error code 404 mean? The page was not found on the server.",
    "Error messages explain what went wrong and what to do about it.",
]


def document_ingested(collection: Collection, filename: str, text: str) -> Document:
    document = document_create(collection=collection, filename=filename, data=text.encode(), queue=False)
    document_ingest(document_id=document.pk)
    document.refresh_from_db()
    return document


def handbook(name: str = "Handbook", *, is_public: bool = True) -> Collection:
    collection = Collection.objects.create(name=name, is_public=is_public)
    for filename, text in [("tea.txt", TEA), ("bike.txt", BIKE), ("taxes.txt", TAXES), ("stars.txt", STARS),
                           ("release-notes.txt", RELEASE_NOTES)]:  # fmt: skip
        document_ingested(collection, filename, text)
    for number, text in enumerate(ERRORS):
        document_ingested(collection, f"errors-{number}.txt", text)
    return collection
