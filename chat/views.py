from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import filesizeformat
from django.template.loader import render_to_string
from django.utils.html import escape
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import push_url

from chat.generators import GenerationError
from chat.ratelimits import ask_wait_seconds
from chat.rendering import source_blocks
from chat.selectors import assistant_message_for, document_passage, owner_for
from chat.services import (
    DATABASE_UNAVAILABLE,
    EMBEDDING_UNAVAILABLE,
    AskError,
    collections_resolve,
    message_answer_stream,
    message_ask,
    question_answer,
    question_validate,
    trace_shown,
)
from documents.embedding import EmbeddingError
from documents.models import Document
from documents.selectors import collections_readable_by
from ragcache.layers import Policy

logger = logging.getLogger(__name__)


@require_GET
def chat_page(request: HttpRequest, conversation_id: int | None = None) -> HttpResponse:
    owner = owner_for(request)
    conversation = None
    if conversation_id is not None:
        conversation = get_object_or_404(owner.conversations(), pk=conversation_id)
    context = {
        "conversations": owner.conversations()[:50],
        "conversation": conversation,
        "chat_messages": conversation.messages.all() if conversation else [],
        "collections": collections_readable_by(user=request.user),
    }
    return render(request, "chat/page.html", context)


@require_POST
def ask(request: HttpRequest) -> HttpResponse:
    if (wait := ask_wait_seconds(request)) is not None:
        response = render(request, "chat/_ask_error.html",
                          {"error": f"Too many questions: ask again in {wait} s."}, status=429)  # fmt: skip
        response["Retry-After"] = str(wait)
        if request.htmx:  # type: ignore[attr-defined]
            response["HX-Retarget"], response["HX-Reswap"] = "#ask-error", "innerHTML"
        return response
    owner = owner_for(request)
    readable = collections_readable_by(user=request.user)
    conversation = None
    try:
        if conversation_id := request.POST.get("conversation"):
            valid = conversation_id.isascii() and conversation_id.isdecimal() and len(conversation_id) <= 18
            conversation = owner.conversations().filter(pk=conversation_id).first() if valid else None
            if conversation is None:
                raise AskError("That conversation does not exist any more. Start a new one.")
        collections = collections_resolve(names_or_ids=request.POST.getlist("collections"), readable=readable)
        question = question_validate(
            question=request.POST.get("question", ""), any_collection=bool(collections) or readable.exists()
        )
    except AskError as exc:
        if request.htmx:  # type: ignore[attr-defined]
            response = render(request, "chat/_ask_error.html", {"error": str(exc)}, status=422)
            response["HX-Retarget"], response["HX-Reswap"] = "#ask-error", "innerHTML"
            return response
        return render(request, "chat/_ask_error.html", {"error": str(exc)}, status=400)
    reply = message_ask(
        owner=owner, conversation=conversation, question=question, collections=list(collections or readable)
    )
    if not request.htmx:  # type: ignore[attr-defined]
        return redirect("chat:conversation", conversation_id=reply.conversation_id)
    context = {"reply": reply, "conversation": reply.conversation, "conversations": owner.conversations()[:50]}
    response = render(request, "chat/_exchange.html", context)
    if conversation is None:
        response = push_url(response, reply.conversation.get_absolute_url())
    return response


@require_GET
def message_stream(request: HttpRequest, message_id: int) -> StreamingHttpResponse:
    message = assistant_message_for(owner=owner_for(request), message_id=message_id)
    if message is None:
        raise Http404("No such answer.")

    def events() -> Iterator[str]:
        for kind, value in message_answer_stream(message=message):
            if kind == "token":
                yield server_sent_event("token", escape(value).replace("\n", "<br>"))
            else:
                yield server_sent_event("done", render_to_string("chat/_message.html", {"message": value}, request))

    response = StreamingHttpResponse(events(), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # let a proxy pass each event on at once
    return response


def server_sent_event(event: str, data: str) -> str:
    lines = "".join(f"data: {line}\n" for line in data.splitlines() or [""])
    return f"event: {event}\n{lines}\n"


@require_GET
def source(request: HttpRequest, document_id: int) -> HttpResponse:
    readable = collections_readable_by(user=request.user)
    document = get_object_or_404(
        Document.objects.filter(collection__in=readable).select_related("collection").defer("source"), pk=document_id
    )
    is_staff = bool(getattr(request.user, "is_staff", False))
    # No text until an ingestion succeeds: only staff, who can act on it, learn why.
    if not document.text and not is_staff:
        raise Http404
    passage = request.GET.get("passage", "")
    span = document_passage(document=document, content_hash=passage) if passage and document.text else None
    context = {
        "document": document,
        "blocks": source_blocks(document.text, span),
        "passage_gone": bool(passage and document.text) and span is None,
        "show_status": is_staff and document.status != Document.Status.READY,
    }
    return render(request, "chat/source.html", context)


def _csrf_checked(request: HttpRequest) -> HttpResponse:
    """Stands for the API view in the CSRF check, which skips views marked exempt."""
    raise NotImplementedError


@csrf_exempt  # see below: a session-authenticated call is still CSRF-checked
def api_ask(request: HttpRequest) -> JsonResponse:
    if request.method != "POST":
        response = JsonResponse({"error": "Ask with POST and a JSON body."}, status=405)
        response["Allow"] = "POST"
        return response
    # A call that carries a session cookie acts as that user and so must pass the CSRF
    # check; a call without one carries no ambient authority and reads public collections.
    if request.user.is_authenticated:
        rejected = CsrfViewMiddleware(lambda r: HttpResponse()).process_view(request, _csrf_checked, (), {})
        if rejected is not None:
            return JsonResponse({"error": "CSRF check failed for this signed-in session."}, status=403)
    if (wait := ask_wait_seconds(request)) is not None:
        response = JsonResponse({"error": f"Too many questions: ask again in {wait} s."}, status=429)
        response["Retry-After"] = str(wait)
        return response
    try:
        payload: Any = json.loads(request.body or b"null")
    except RequestDataTooBig:
        limit = filesizeformat(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
        return JsonResponse({"error": f"The body is too large: the limit is {limit}."}, status=413)
    except (ValueError, RecursionError):  # not JSON, not UTF-8, a number of too many digits; too deep
        return JsonResponse({"error": "The body is not valid JSON (or is nested too deeply)."}, status=400)
    if not isinstance(payload, dict) or not isinstance(payload.get("question"), str):
        return JsonResponse(
            {"error": 'Send a JSON object like {"question": "...", "collections": ["..."]}.'}, status=400
        )
    names = payload.get("collections") or []
    if not isinstance(names, list):
        return JsonResponse({"error": "collections must be a list of collection names or ids."}, status=400)
    # A bypass costs an LLM call and replaces a shared answer: staff only.
    asked_policy = Policy.from_cache_control(request.headers.get("Cache-Control", ""))
    is_staff = bool(getattr(request.user, "is_staff", False))
    try:
        result = question_answer(user=request.user, question=payload["question"], names_or_ids=names,
                                 cache_policy=asked_policy if is_staff else Policy())  # fmt: skip
    except AskError as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    except GenerationError as exc:
        return JsonResponse({"error": str(exc)}, status=502)
    except EmbeddingError:
        logger.exception("The embedding service failed")
        return JsonResponse({"error": EMBEDDING_UNAVAILABLE}, status=503)
    except (OperationalError, InterfaceError):  # unreachable; a programming error stays a 500
        logger.exception("The database failed")
        return JsonResponse({"error": DATABASE_UNAVAILABLE}, status=503)
    trace = trace_shown(result.trace, is_staff=is_staff)
    if asked_policy != Policy() and not is_staff:
        trace["cache_control"] = "ignored: only staff may bypass the cache"
    return JsonResponse({"answer": result.text, "citations": result.citations, "trace": trace})
