"""The speed layer: Redis caches for query embeddings (emb), retrievals (ret) and answers
(ans, and the opt-in near-duplicate sem), with exact invalidation. No views, and no
imports of the apps: the generation loader is named in settings."""
