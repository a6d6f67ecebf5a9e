from __future__ import annotations

import importlib.util
from typing import Any

from django.conf import settings
from django.core import checks
from django.utils.module_loading import import_string

from documents.embedding import LOCAL_PROVIDERS


@checks.register()
def embedding_settings(app_configs: Any, **kwargs: Any) -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    if settings.EMBEDDING_PROVIDER not in settings.EMBEDDING_PROVIDERS:
        errors.append(
            checks.Error(
                f"EMBEDDING_PROVIDER={settings.EMBEDDING_PROVIDER!r} is unknown.",
                hint=f"Choose one of {', '.join(settings.EMBEDDING_PROVIDERS)}.",
                id="documents.E001",
            )
        )
    elif settings.EMBEDDING_PROVIDER in LOCAL_PROVIDERS:
        embedder = import_string(settings.EMBEDDING_PROVIDERS[settings.EMBEDDING_PROVIDER])
        if embedder.dimensions != settings.EMBEDDING_DIMENSIONS:
            errors.append(
                checks.Error(
                    f"EMBEDDING_DIMENSIONS={settings.EMBEDDING_DIMENSIONS}, but the local model gives "
                    f"{embedder.dimensions} dimensions.",
                    hint="Use the openai provider for other sizes, or unset EMBEDDING_DIMENSIONS.",
                    id="documents.E003",
                )
            )
        if settings.EMBEDDING_PROVIDER == "torch" and importlib.util.find_spec("sentence_transformers") is None:
            errors.append(
                checks.Error(
                    "EMBEDDING_PROVIDER=torch, but sentence-transformers is not installed.",
                    hint="pip install -r requirements-torch.txt, or use the default onnx provider.",
                    id="documents.E004",
                )
            )
    if not 0 <= settings.CHUNK_OVERLAP_TOKENS < settings.CHUNK_SIZE_TOKENS:
        errors.append(
            checks.Error("CHUNK_OVERLAP_TOKENS must be at least 0 and below CHUNK_SIZE_TOKENS.", id="documents.E002")
        )
    return errors
