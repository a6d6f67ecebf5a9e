"""Conversations: asking, answering (streamed), and who owns what."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from chat.generators import GenerationError
from chat.models import Conversation, Message
from chat.pipeline import Answer, answer, answer_stream
from chat.selectors import Owner
from documents.embedding import EmbeddingError
from documents.models import Collection
from documents.selectors import collections_readable_by
from ragcache import catalog
from ragcache.catalog import ScopeUnverified
from ragcache.layers import Policy

logger = logging.getLogger(__name__)
COLLECTIONS_MAX = 20  # collections one question may name
STREAM_WAIT_SECONDS = 60
ABANDONED_AFTER = timedelta(minutes=5)


class AskError(Exception):
    """A question that cannot be asked as it is; the message is shown to the user."""


def question_validate(*, question: str, any_collection: bool) -> str:
    question = question.strip()
    if not question:
        raise AskError("Type a question first.")
    if (bad := first_non_text(question)) is not None:
        raise AskError(f"The question contains a character that is not text ({bad}). Type it again.")
    if len(question) > settings.QUESTION_MAX_CHARS:
        raise AskError(
            f"The question is {len(question):,} characters long; the limit is {settings.QUESTION_MAX_CHARS:,}."
        )
    if not any_collection:
        raise AskError("There is no collection to ask yet.")
    return question


def collections_resolve(*, names_or_ids: Sequence[Any], readable: QuerySet[Collection]) -> list[Collection]:
    """The readable collections named (by name or id), in one query; AskError naming any
    unknown one, or when more than COLLECTIONS_MAX are named."""
    texts = _named(names_or_ids)
    # What cannot be a name or an id is unknown without asking the database.
    askable = [text for text in texts if first_non_text(text) is None]
    ids = [int(text) for text in askable if _is_id(text)]
    matches = list(readable.filter(Q(pk__in=ids) | Q(name__in=askable))) if askable else []
    by_text = {c.name: c for c in matches} | {str(c.pk): c for c in matches}
    found: list[Collection] = []
    unknown: list[str] = []
    for text in texts:
        match = by_text.get(text) or (by_text.get(str(int(text))) if _is_id(text) else None)
        if match is None:
            unknown.append(text)
        elif match not in found:
            found.append(match)
    if unknown:
        raise _unknown(unknown)
    return found


def _named(names_or_ids: Sequence[Any]) -> list[str]:
    """The collections named, as text; AskError for too many, or for what is neither a name
    nor an id."""
    if len(names_or_ids) > COLLECTIONS_MAX:
        raise AskError(f"Name at most {COLLECTIONS_MAX} collections (or none: every one you may read).")
    if any(isinstance(value, bool) or not isinstance(value, str | int) for value in names_or_ids):
        raise AskError("Name each collection by its name (text) or its id (a whole number).")
    return [str(value).strip() for value in names_or_ids]


def _unknown(texts: Sequence[str]) -> AskError:
    shown = [text.encode("utf-8", "backslashreplace").decode() for text in texts]  # surrogates shown, not raised
    return AskError(f"Unknown collection: {', '.join(shown)}.")


def first_non_text(text: str) -> str | None:
    """The first character of `text` that is not text, as U+XXXX: a lone surrogate (not
    encodable), NUL (PostgreSQL refuses it), or a control character other than tab and
    line breaks (terminal escapes, bells); None when there is none."""
    for character in text:
        code = ord(character)
        if 0xD800 <= code <= 0xDFFF or (code < 32 and character not in "\t\n\r") or code == 0x7F:
            return f"U+{code:04X}"
    return None


@dataclass(frozen=True)
class Scope:
    """The collections an ask reads, and the catalog copy they were resolved from (None:
    from the database, nothing to check)."""

    collection_ids: list[int]
    catalog_version: int | None


def scope_resolve(*, user: AbstractBaseUser | AnonymousUser, names_or_ids: Sequence[Any], fresh: bool) -> Scope:
    """The collections named (or every one the asker may read). For anonymous askers and
    staff, from the catalog copy, with no query; the lookup then checks that copy is the
    current one (ScopeUnverified if not). `fresh`: from the database, as after that."""
    if user.is_authenticated and not getattr(user, "is_staff", False):  # readers of groups' collections
        readable = collections_readable_by(user=user)  # type: ignore[arg-type]
        named = collections_resolve(names_or_ids=names_or_ids, readable=readable)
        return Scope([c.pk for c in named] or list(readable.values_list("pk", flat=True)), None)
    copy = catalog.refresh(from_database=True) if fresh else catalog.current()
    readable_entries = [entry for entry in copy.entries if entry.is_public or user.is_authenticated]
    by_key = {str(e.collection_id): e for e in readable_entries} | {e.name: e for e in readable_entries}
    ids: list[int] = []
    unknown: list[str] = []
    for text in _named(names_or_ids):
        entry = by_key.get(text) if not _is_id(text) else by_key.get(str(int(text))) or by_key.get(text)
        if entry is None:
            unknown.append(text)
        elif entry.collection_id not in ids:
            ids.append(entry.collection_id)
    if unknown:
        if not fresh:  # perhaps made since this copy was read
            raise ScopeUnverified(f"unknown to catalog version {copy.version}: {unknown!r}")
        raise _unknown(unknown)
    return Scope(ids or [e.collection_id for e in readable_entries], None if fresh else copy.version)


def question_answer(
    *, user: AbstractBaseUser | AnonymousUser, question: str, names_or_ids: Sequence[Any], cache_policy: Policy
) -> Answer:
    """Validate a question and answer it in the asker's scope (AskError, GenerationError).
    The scope comes from the catalog copy (no query), or from the database when the lookup
    finds that copy is not the current one."""
    for fresh in (False, True):
        try:
            scope = scope_resolve(user=user, names_or_ids=names_or_ids, fresh=fresh)
            text = question_validate(question=question, any_collection=bool(scope.collection_ids))
            return answer(question=text, collection_ids=scope.collection_ids, cache_policy=cache_policy,
                          catalog_version=scope.catalog_version)  # fmt: skip
        except ScopeUnverified:
            continue
    raise AssertionError("a scope read from the database is never unverified")


EMBEDDING_UNAVAILABLE = "The embedding service did not answer. Please try again in a moment."
DATABASE_UNAVAILABLE = (
    "The database did not answer: only questions answered before can be answered now. Please try again."
)


def trace_shown(trace: dict[str, Any], *, is_staff: bool) -> dict[str, Any]:
    """What an answer's trace tells its reader. Per-layer cache outcomes would tell anyone
    what others asked before (an embedding hit on a question only someone else asked):
    staff see them, others only whether their own answer came from the cache, and how fast,
    and which question it answered when that was a similar one: without it, the reader
    could not judge whether it answers theirs (docs/caching.md, "Who sees what")."""
    if is_staff:
        return dict(trace)
    shown = {"from_cache": bool(trace.get("from_cache")), "total_ms": trace.get("total_ms")}
    if trace.get("similar_question"):
        shown["similar_question"] = trace["similar_question"]
    return shown


def _is_id(text: str) -> bool:
    return text.isascii() and text.isdecimal() and len(text) <= 18  # within PostgreSQL's bigint


def message_ask(
    *, owner: Owner, conversation: Conversation | None, question: str, collections: Sequence[Collection]
) -> Message:
    """Store the question and a pending answer; the answer is generated when streamed."""
    with transaction.atomic():
        if conversation is None:
            conversation = Conversation.objects.create(
                user_id=owner.user_id, session_key=owner.session_key, title=question[:200]
            )
        Message.objects.create(conversation=conversation, role=Message.Role.USER, content=question)
        reply = Message.objects.create(
            conversation=conversation,
            role=Message.Role.ASSISTANT,
            question=question,
            collection_ids=[c.pk for c in collections],
            status=Message.Status.PENDING,
        )
        conversation.save(update_fields=["updated_at"])
    return reply


def message_answer_stream(*, message: Message) -> Iterator[tuple[str, Any]]:
    """Generate a pending answer: ("token", text)..., then ("done", message).

    Only the first caller generates (a browser reconnecting to the stream must not
    ask twice); a message that is not pending is returned as it stands.
    """
    claimed = Message.objects.filter(pk=message.pk, status=Message.Status.PENDING).update(
        status=Message.Status.STREAMING
    )
    if not claimed:
        yield "done", _message_when_finished(message)
        return
    result: Answer | None = None
    try:
        asked_of, message.collection_ids = message.collection_ids, _collections_still_readable(message)
        if asked_of and not message.collection_ids:
            _message_fail(message, "You no longer have access to the collections this question was asked of.")
            yield "done", message
            return
        for kind, value in answer_stream(question=message.question, collection_ids=message.collection_ids):
            if kind == "token":
                yield "token", value
            else:
                result = value
    except GeneratorExit:
        # The client went away mid-answer: an unfinished answer is never stored as one.
        _message_fail(message, "The answer was interrupted. Please ask again.")
        raise
    except GenerationError as exc:
        _message_fail(message, str(exc))
        yield "done", message
        return
    except EmbeddingError:
        logger.exception("Answering message %s: the embedding service failed", message.pk)
        _message_fail(message, EMBEDDING_UNAVAILABLE)
        yield "done", message
        return
    except Exception:
        logger.exception("Answering message %s failed", message.pk)
        _message_fail(message, "Something went wrong while answering. Please ask again.")
        yield "done", message
        return
    assert result is not None
    message.content, message.citations, message.trace = result.text, result.citations, result.trace
    message.status = Message.Status.COMPLETE
    try:
        yield "done", message  # the reader has the answer first ...
    finally:  # ... then it is kept, even when the reader has gone meanwhile
        message.save(update_fields=["content", "citations", "trace", "status", "collection_ids"])


def _collections_still_readable(message: Message) -> list[int]:
    """The message's collections that its owner may read now: access may have been revoked
    between the question and its answer."""
    owner = message.conversation.user or AnonymousUser()
    if owner.is_staff:  # staff read every collection: no query
        return message.collection_ids
    readable = collections_readable_by(user=owner).filter(pk__in=message.collection_ids)
    readable_ids = set(readable.values_list("pk", flat=True))
    return [collection_id for collection_id in message.collection_ids if collection_id in readable_ids]


def _message_when_finished(message: Message) -> Message:
    """Another stream is writing this answer (a reconnect, a second tab): wait for it,
    so the browser does not reconnect in a loop. An answer left unfinished by a process
    that died is failed, so it can be asked again."""
    message.refresh_from_db()
    abandoned = timezone.now() - message.created_at > ABANDONED_AFTER
    deadline = time.monotonic() + STREAM_WAIT_SECONDS
    while message.status == Message.Status.STREAMING and not abandoned and time.monotonic() < deadline:
        time.sleep(0.25)
        message.refresh_from_db()
    if message.status == Message.Status.STREAMING and abandoned:
        _message_fail(message, "The answer was interrupted. Please ask again.")
    return message


def _message_fail(message: Message, reason: str) -> None:
    message.status, message.error = Message.Status.FAILED, reason
    message.save(update_fields=["status", "error"])
