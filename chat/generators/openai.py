"""Chat completions from any OpenAI-compatible endpoint, streamed."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import openai
from django.conf import settings

from chat.generators.base import GenerationError, Generator, Passage, Usage
from documents.embedding import get_embedder

PROMPT_VERSION = "2"  # 2: passages named by their section; say plainly when they do not answer
SYSTEM_PROMPT = (
    "You answer questions using only the numbered passages you are given, each headed by the section "
    "it comes from. Cite the passages you use with their numbers in square brackets, like [1]. Keep code "
    "as code, in fenced blocks. If the passages do not answer the question, do not answer from what you "
    "know: say plainly that the documents do not answer it, and name the passages closest to it, with "
    "their numbers, as pages the user may look at."
)


def build_messages(question: str, passages: Sequence[Passage]) -> list[dict[str, str]]:
    context = "\n\n".join(f"[{n}] {p.label}\n{p.text}" for n, p in enumerate(passages, start=1))
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": f"Passages:\n\n{context}\n\nQuestion: {question}"},
    ]


def cost_usd(model: str, prompt_tokens: int, completion_tokens: int) -> float | None:
    prices = settings.OPENAI_PRICES_PER_MILLION.get(model)
    if prices is None:
        return None
    return (prompt_tokens * prices[0] + completion_tokens * prices[1]) / 1_000_000


def estimated_usage(model: str, messages: list[dict[str, str]], answer: str) -> Usage:
    """Tokens counted with the embedder's tokenizer: not the model's own, so an estimate."""
    prompt, completion = get_embedder().count_tokens(["\n".join(m["content"] for m in messages), answer])
    return Usage(prompt_tokens=prompt, completion_tokens=completion, cost_usd=cost_usd(model, prompt, completion),
                 estimated=True)  # fmt: skip


class OpenAIGenerator(Generator):
    name = "openai"
    prompt_version = PROMPT_VERSION

    def __init__(self) -> None:
        self.model = settings.OPENAI_CHAT_MODEL
        self.temperature = settings.OPENAI_TEMPERATURE
        self.deterministic = self.temperature <= settings.CACHE_MAX_TEMPERATURE
        self.client = openai.OpenAI(
            api_key=settings.OPENAI_API_KEY or "not-set",
            base_url=settings.OPENAI_BASE_URL,
            timeout=settings.OPENAI_TIMEOUT_SECONDS,
            max_retries=settings.OPENAI_MAX_RETRIES,
        )

    @property
    def cache_id(self) -> str:
        return f"{self.name}:{self.model}:t{self.temperature:g}"

    def stream(self, *, question: str, passages: Sequence[Passage]) -> Iterator[str | Usage]:
        try:
            messages = build_messages(question, passages)
            response = self.client.chat.completions.create(  # type: ignore[call-overload]
                model=self.model,
                messages=messages,
                temperature=self.temperature,
                stream=True,
                stream_options={"include_usage": True},
            )
            finish_reason = None
            reported = False
            pieces: list[str] = []
            # Closed whatever happens, so its connection goes back to the client's pool.
            with response:
                for chunk in response:
                    if chunk.choices:
                        choice = chunk.choices[0]
                        if choice.delta and choice.delta.content:
                            pieces.append(choice.delta.content)
                            yield choice.delta.content
                        finish_reason = choice.finish_reason or finish_reason
                    if chunk.usage:
                        reported = True
                        yield Usage(
                            prompt_tokens=chunk.usage.prompt_tokens,
                            completion_tokens=chunk.usage.completion_tokens,
                            cost_usd=cost_usd(self.model, chunk.usage.prompt_tokens, chunk.usage.completion_tokens),
                        )
        except openai.APITimeoutError:
            raise GenerationError("The language model did not answer in time. Please ask again.") from None
        except openai.OpenAIError as exc:
            raise GenerationError(f"The language model failed to answer ({type(exc).__name__}).") from exc
        if finish_reason == "length":
            raise GenerationError("The language model's answer was cut off at its length limit.")
        if finish_reason != "stop":  # the stream ended early, or the answer was filtered
            raise GenerationError(f"The language model did not finish its answer ({finish_reason or 'no reason'}).")
        if not reported:  # some servers (llama.cpp's among them) send no usage in a stream
            yield estimated_usage(self.model, messages, "".join(pieces))
