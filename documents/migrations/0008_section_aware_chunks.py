import django.contrib.postgres.indexes
import django.contrib.postgres.search
from django.db import migrations, models

# A generated column cannot be altered: the full-text vector is dropped and added again,
# weighted, with its index. Rows keep their lexemes (their section is empty), so the term
# frequencies the triggers keep stay true. Documents chunked before sections (format 0)
# are re-ingested by `manage.py ingest` and `make run`.


class Migration(migrations.Migration):
    dependencies = [
        ("documents", "0007_ingest_attempts"),
    ]

    operations = [
        migrations.AddField(
            model_name="document",
            name="chunk_format",
            field=models.PositiveSmallIntegerField(
                db_default=0, editable=False, help_text="The chunker's format of the chunks (documents.chunking.FORMAT)."
            ),
        ),
        migrations.AddField(
            model_name="chunk",
            name="section",
            field=models.TextField(
                blank=True, db_default="", help_text="The section the chunk is from: page title and heading path."
            ),
        ),
        migrations.RemoveIndex(model_name="chunk", name="chunk_search_vector_gin"),
        migrations.RemoveField(model_name="chunk", name="search_vector"),
        migrations.AddField(
            model_name="chunk",
            name="search_vector",
            field=models.GeneratedField(
                db_persist=True,
                expression=django.contrib.postgres.search.SearchVector(
                    "section", config="english", weight="A"
                )
                + django.contrib.postgres.search.SearchVector("text", config="english", weight="B"),
                output_field=django.contrib.postgres.search.SearchVectorField(),
            ),
        ),
        migrations.AddIndex(
            model_name="chunk",
            index=django.contrib.postgres.indexes.GinIndex(fields=["search_vector"], name="chunk_search_vector_gin"),
        ),
    ]
