"""Answer generators: one interface, one module per implementation, one instance per process.

`openai` when an endpoint is configured (OPENAI_BASE_URL or OPENAI_API_KEY), otherwise
`extractive`; GENERATOR names one explicitly.
"""

from __future__ import annotations

import functools
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

from chat.generators.base import GenerationError, Generator, Passage, Usage

__all__ = ["GenerationError", "Generator", "Passage", "Usage", "get_generator"]

GENERATORS = {
    "extractive": "chat.generators.extractive.ExtractiveGenerator",
    "openai": "chat.generators.openai.OpenAIGenerator",
}


@functools.cache
def get_generator() -> Generator:
    """The process's generator, built once like the embedder: its client (and that
    client's pool of HTTP connections) serves every ask."""
    name = settings.GENERATOR or ("openai" if settings.OPENAI_BASE_URL or settings.OPENAI_API_KEY else "extractive")
    generator: Generator = import_string(GENERATORS[name])()
    return generator


@receiver(setting_changed)
def _settings_changed(**kwargs: Any) -> None:
    get_generator.cache_clear()  # settings change at run time in tests only
