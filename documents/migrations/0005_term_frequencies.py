from django.db import migrations, models

# Statement-level triggers with transition tables: one upsert per INSERT, DELETE or UPDATE
# statement on the chunks, however many rows it touches (bulk_create, a document's
# cascade). Rows are locked in lexeme order, so concurrent ingestions cannot deadlock.
# The empty lexeme counts the chunks themselves. A lexeme no chunk holds any more keeps its
# row, at zero.
TRIGGERS = """
CREATE FUNCTION documents_chunk_terms_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO documents_termfrequency (lexeme, chunks)
  SELECT lexeme, count(*) FROM (
    SELECT unnest(tsvector_to_array(search_vector)) AS lexeme FROM added
    UNION ALL SELECT '' FROM added
  ) terms GROUP BY lexeme ORDER BY lexeme
  ON CONFLICT (lexeme) DO UPDATE SET chunks = documents_termfrequency.chunks + EXCLUDED.chunks;
  RETURN NULL;
END $$;

CREATE FUNCTION documents_chunk_terms_removed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  WITH counts AS (
    SELECT lexeme, count(*) AS n FROM (
      SELECT unnest(tsvector_to_array(search_vector)) AS lexeme FROM removed
      UNION ALL SELECT '' FROM removed
    ) terms GROUP BY lexeme
  ), locked AS (
    SELECT tf.lexeme FROM documents_termfrequency tf JOIN counts USING (lexeme) ORDER BY tf.lexeme FOR UPDATE OF tf
  )
  UPDATE documents_termfrequency tf SET chunks = tf.chunks - counts.n
    FROM counts WHERE tf.lexeme = counts.lexeme AND tf.lexeme IN (SELECT lexeme FROM locked);
  RETURN NULL;
END $$;

CREATE TRIGGER documents_chunk_terms_added AFTER INSERT ON documents_chunk
  REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION documents_chunk_terms_added();
CREATE TRIGGER documents_chunk_terms_removed AFTER DELETE ON documents_chunk
  REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION documents_chunk_terms_removed();
-- An update of a chunk's text counts as its old text removed and its new text added.
CREATE TRIGGER documents_chunk_terms_updated_out AFTER UPDATE ON documents_chunk
  REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION documents_chunk_terms_removed();
CREATE TRIGGER documents_chunk_terms_updated_in AFTER UPDATE ON documents_chunk
  REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION documents_chunk_terms_added();

INSERT INTO documents_termfrequency (lexeme, chunks)
SELECT lexeme, count(*) FROM (
  SELECT unnest(tsvector_to_array(search_vector)) AS lexeme FROM documents_chunk
  UNION ALL SELECT '' FROM documents_chunk
) terms GROUP BY lexeme
UNION ALL SELECT '', 0 WHERE NOT EXISTS (SELECT 1 FROM documents_chunk);
"""

DROP_TRIGGERS = """
DROP TRIGGER documents_chunk_terms_added ON documents_chunk;
DROP TRIGGER documents_chunk_terms_removed ON documents_chunk;
DROP TRIGGER documents_chunk_terms_updated_out ON documents_chunk;
DROP TRIGGER documents_chunk_terms_updated_in ON documents_chunk;
DROP FUNCTION documents_chunk_terms_added();
DROP FUNCTION documents_chunk_terms_removed();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("documents", "0004_catalog"),
    ]

    operations = [
        migrations.CreateModel(
            name="TermFrequency",
            fields=[
                ("lexeme", models.TextField(primary_key=True, serialize=False)),
                ("chunks", models.BigIntegerField()),
            ],
            options={
                "verbose_name_plural": "term frequencies",
            },
        ),
        migrations.RunSQL(TRIGGERS, DROP_TRIGGERS),
    ]
