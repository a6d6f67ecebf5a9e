"""Answer generators: one interface, one module per implementation.

`openai` when an endpoint is configured (OPENAI_BASE_URL or OPENAI_API_KEY), otherwise
`extractive`; GENERATOR names one explicitly.
"""

from __future__ import annotations

from django.conf import settings
from django.utils.module_loading import import_string

from chat.generators.base import GenerationError, Generator, Passage, Usage

__all__ = ["GenerationError", "Generator", "Passage", "Usage", "get_generator"]

GENERATORS = {
    "extractive": "chat.generators.extractive.ExtractiveGenerator",
    "openai": "chat.generators.openai.OpenAIGenerator",
}


def get_generator() -> Generator:
    name = settings.GENERATOR or ("openai" if settings.OPENAI_BASE_URL or settings.OPENAI_API_KEY else "extractive")
    generator: Generator = import_string(GENERATORS[name])()
    return generator
