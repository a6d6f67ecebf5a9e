"""The full-text side's term statistics, kept by triggers as chunks come and go."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from documents.models import Chunk, Collection, TermFrequency
from documents.selectors import COMMON_TERM_SHARE, search_terms_distinctive
from documents.services import document_ingest, document_replace_source
from tests.chat.factories import document_ingested, handbook

pytestmark = pytest.mark.django_db


def counted_over_the_table() -> dict[str, int]:
    """Every lexeme's chunk count as ts_stat counts it over the whole table, and the total."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT word, ndoc FROM ts_stat('SELECT search_vector FROM documents_chunk')")
        counts = dict(cursor.fetchall())
    return {**counts, "": Chunk.objects.count()}


def kept() -> dict[str, int]:
    return dict(TermFrequency.objects.filter(chunks__gt=0).values_list("lexeme", "chunks")) | {
        "": TermFrequency.objects.get(lexeme="").chunks
    }


def test_the_counts_follow_every_way_chunks_come_and_go():
    collection = handbook()
    assert kept() == counted_over_the_table() and kept()[""] == Chunk.objects.count() > 0
    tea = collection.documents.get(title="tea")
    document_replace_source(document=tea, filename="tea.txt", data=b"Oolong tea wants water at ninety degrees.")
    document_ingest(document_id=tea.pk)  # its chunks replaced
    assert kept() == counted_over_the_table() and "oolong" in kept()
    collection.documents.get(title="bike").delete()  # a document's chunks go with it
    assert kept() == counted_over_the_table()
    Chunk.objects.filter(document__title="stars").update(text="Quasars outshine their galaxies.")
    assert kept() == counted_over_the_table() and "quasar" in kept() and "neutron" not in kept()
    other = handbook("Other")
    Collection.objects.filter(pk=other.pk).delete()  # a collection's documents and chunks too
    assert kept() == counted_over_the_table()
    Collection.objects.all().delete()
    assert kept() == {"": 0}


def test_distinctive_terms_are_chosen_from_the_counts_in_one_query_that_reads_no_chunk():
    collection = handbook()
    for number in range(12):  # "water" in most chunks, "scalds" in one
        document_ingested(collection, f"water-{number}.txt", f"Water note {number}: water is wet.")
    with CaptureQueriesContext(connection) as queries:
        terms = search_terms_distinctive("Why does boiling water scald the leaves?")
    assert len(queries) == 1 and "documents_chunk" not in queries[0]["sql"]
    total = Chunk.objects.count()
    water = Chunk.objects.filter(text__icontains="water").count()
    assert water > COMMON_TERM_SHARE * total  # common: left out
    assert terms == ["boiling", "scald", "leaves"]


def test_a_question_of_common_words_only_keeps_them_all():
    handbook()
    assert search_terms_distinctive("the a and of") == []  # stop words have no lexeme
    assert search_terms_distinctive("tea") == ["tea"]
