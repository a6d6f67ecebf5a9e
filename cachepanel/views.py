"""The cache panel at /admin/cache/, on the admin's own templates.

Each page is one view and one template; on an htmx request it renders only the region
that asked (its partial), and a history restore gets the whole page. Reads go through
cachepanel.selectors, writes through cachepanel.services.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect, HttpResponseClientRefresh, trigger_client_event

from cachepanel import selectors, services
from cachepanel.admin import MANAGE, VIEW
from cachepanel.forms import ExpireForm, FlushForm, KeyFilterForm, KeyForm, SwitchesForm
from ragcache.browse import PAGE_ROWS
from ragcache.client import CacheUnavailable
from ragcache.invalidation import FLUSHABLE

View = Callable[..., HttpResponse]
CHANGED = "cache-changed"  # the client event after an action: the regions that show keys refresh


def panel(permission: str) -> Callable[[View], View]:
    """Anonymous: to the admin's login. Signed in without `permission`: 403."""

    def decorator(view: View) -> View:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            user = request.user
            if not user.is_authenticated:
                if request.htmx:  # type: ignore[attr-defined]
                    page = request.htmx.current_url_abs_path or reverse("cachepanel:overview")  # type: ignore[attr-defined]
                    return HttpResponseClientRedirect(f"{reverse('admin:login')}?{urlencode({'next': page})}")
                return redirect_to_login(request.get_full_path(), reverse("admin:login"))
            if not (user.is_active and user.is_staff and user.has_perm(permission)):
                if request.htmx:  # type: ignore[attr-defined]
                    return HttpResponseClientRefresh()  # the whole page then says 403
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return never_cache(wrapped)

    return decorator


def _user_id(request: HttpRequest) -> int:
    assert request.user.pk is not None  # panel() lets only signed-in users in
    return int(request.user.pk)


def _region(request: HttpRequest) -> str | None:
    """The id of the region an htmx request asks for; None for a whole page."""
    htmx = request.htmx  # type: ignore[attr-defined]
    if not htmx or htmx.history_restore_request:
        return None
    return str(htmx.target) if htmx.target else None


def _page_context(request: HttpRequest, title: str, section: str, **extra: Any) -> dict[str, Any]:
    return {
        **admin.site.each_context(request),
        "title": title,
        "section": section,
        "can_manage": request.user.has_perm(MANAGE),
        **extra,
    }


@require_GET
@panel(VIEW)
def overview(request: HttpRequest) -> HttpResponse:
    context: dict[str, Any] = {"overview": selectors.overview_read(), "can_manage": request.user.has_perm(MANAGE)}
    context["flushable"] = FLUSHABLE
    if _region(request) == "overview":
        return render(request, "cachepanel/_overview.html", context)
    if _region(request) == "controls":  # they come back when Redis does
        return render(request, "cachepanel/_controls.html", context)
    return render(request, "cachepanel/overview.html", _page_context(request, "Cache panel", "overview", **context))


@require_GET
@panel(VIEW)
def key_list(request: HttpRequest) -> HttpResponse:
    return _keys_page(request, detail_key=None)


@require_GET
@panel(VIEW)
def key_detail(request: HttpRequest) -> HttpResponse:
    form = KeyForm(request.GET)
    if not form.is_valid():
        errors = "; ".join(str(error) for error in form.errors["key"])
        return _keys_page(request, detail_key=None, detail_error=errors, status=400)
    return _keys_page(request, detail_key=form.cleaned_data["key"])


def _keys_page(
    request: HttpRequest, *, detail_key: str | None, detail_error: str = "", status: int = 200
) -> HttpResponse:
    region = _region(request)
    filters = KeyFilterForm(request.GET)
    context: dict[str, Any] = {
        "filters": filters, "can_manage": request.user.has_perm(MANAGE), "error": "", "detail_error": detail_error,
        "query": "", "this_page": "",
    }  # fmt: skip
    if detail_error and region == "key-detail":
        return render(request, "cachepanel/_key_detail.html", context, status=status)
    try:
        if detail_key is not None:
            context["detail"] = selectors.key_detail_read(detail_key)
            context["detail_key"] = detail_key
            if region == "key-detail":
                return render(request, "cachepanel/_key_detail.html", context)
        if filters.is_valid():
            data = filters.cleaned_data
            page = selectors.key_page_read(cursor=data["cursor"], kind=data["kind"], text=data["text"])
            shown = (data["shown"] or 0) + len(page.rows)
            context.update(
                page=page,
                shown=shown,
                continued=bool(data["shown"]),
                # A search goes on by itself, a stretch of the keyspace per request, until a page is full.
                searching=bool(data["text"].strip()) and page.cursor != "0" and shown < PAGE_ROWS,
                query=urlencode({"kind": data["kind"], "text": data["text"]}),
                this_page=urlencode({"kind": data["kind"], "text": data["text"], "cursor": data["cursor"]}),
            )
            context["detail_url"] = f"{reverse('cachepanel:key')}?{context['query']}&key="
    except CacheUnavailable as exc:
        context["error"] = str(exc) or "Redis did not answer."
        context["availability"] = selectors.availability_read(context["error"])
    if region == "key-rows":
        return render(request, "cachepanel/_key_rows.html", context)
    if region == "key-more":
        return render(request, "cachepanel/_key_more.html", context)
    whole = _page_context(request, "Cache keys", "keys", **context)
    return render(request, "cachepanel/keys.html", whole, status=status)


@require_POST
@panel(MANAGE)
def key_delete(request: HttpRequest) -> HttpResponse:
    form = KeyForm(request.POST)
    if not form.is_valid():
        return _invalid(request, form)
    key = form.cleaned_data["key"]
    try:
        deleted = services.cache_key_delete(user_id=_user_id(request), key=key)
    except CacheUnavailable:
        return _unreachable(request)
    except ValueError as exc:
        return _message(request, str(exc), level=messages.ERROR, status=422, changed=False)
    text = f"Deleted {key}." if deleted else f"{key} was already gone."
    return _message(request, text, gone=True)


@require_POST
@panel(MANAGE)
def key_expire(request: HttpRequest) -> HttpResponse:
    form = ExpireForm(request.POST)
    if not form.is_valid():
        return _invalid(request, form)
    data = form.cleaned_data
    extend = data["mode"] == "extend"
    try:
        ttl = services.cache_key_expire(
            user_id=_user_id(request), key=data["key"], seconds=data["seconds"], extend=extend
        )
    except CacheUnavailable:
        return _unreachable(request)
    except ValueError as exc:
        return _message(request, str(exc), level=messages.ERROR, status=422, changed=False)
    if ttl is None:
        return _message(request, f"{data['key']} is gone.", level=messages.WARNING, gone=True)
    try:
        detail = selectors.key_detail_read(data["key"])
    except CacheUnavailable:  # Redis went away since the change: the message alone
        return _message(request, f"The TTL of {data['key']} is now {ttl:,} s.")
    return _message(request, f"The TTL of {data['key']} is now {ttl:,} s.", detail=detail, detail_key=data["key"],
                    can_manage=True)  # fmt: skip


@require_POST
@panel(MANAGE)
def flush(request: HttpRequest) -> HttpResponse:
    form = FlushForm(request.POST)
    if not form.is_valid():
        return _invalid(request, form)
    target, document_id = form.cleaned_data["target"], form.cleaned_data["document_id"]
    title = selectors.document_title(document_id) if target == "document" else None
    if request.POST.get("confirmed") != "yes":  # removes more than one key: ask first
        context = {"form": form, "target": target, "document_id": document_id, "document_title": title,
                   "next": _next(request)}  # fmt: skip
        return render(
            request, "cachepanel/confirm.html", _page_context(request, "Are you sure?", "overview", **context)
        )
    deleted = _act(lambda: services.cache_flush(user_id=_user_id(request), target=target, document_id=document_id))
    if deleted is None:
        return _unreachable(request)
    what = {"all": "every key of the app", "document": f"the entries citing {title or f'document {document_id}'}"}
    return _message(request, f"Flushed {what.get(target, f'the {target} layer')}: {deleted:,} keys deleted.")


@require_POST
@panel(MANAGE)
def switches_save(request: HttpRequest) -> HttpResponse:
    if request.POST.get("action") == "reset":
        try:
            services.cache_switches_reset(user_id=_user_id(request))
        except CacheUnavailable:
            return _unreachable(request)
        return _message(request, "Switches reset to the settings' defaults.")
    form = SwitchesForm(request.POST)
    if not form.is_valid():
        return _invalid(request, form)
    layers, threshold, checks = form.layers(), form.cleaned_data["sem_threshold"], form.checks()
    saved = _act(lambda: services.cache_switches_set(user_id=_user_id(request), layers=layers, sem_threshold=threshold,
                                                     checks=checks))  # fmt: skip
    if saved is None:
        return _unreachable(request)
    shown = services.switches_described(layers, checks)
    return _message(request, f"Switches saved: {shown}; semantic threshold {threshold:.2f}. Every process follows "
                             "with its next question.")  # fmt: skip


@require_POST
@panel(MANAGE)
def generations_republish(request: HttpRequest) -> HttpResponse:
    raised = _act(lambda: services.cache_generations_republish(user_id=_user_id(request)))
    if raised is None:
        return _unreachable(request)
    if not raised:
        return _message(request, "Every generation copy was already in step with the database.")
    return _message(request, f"Republished the generations of {len(raised)} collection(s): ids {raised}.")


# -- responses of the actions ------------------------------------------------------------


def _act(action: Callable[[], Any]) -> Any:
    """The action's result, or None when Redis could not be reached."""
    try:
        return action()
    except CacheUnavailable:
        return None


def _next(request: HttpRequest) -> str:
    target = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return reverse("cachepanel:overview")


def _message(
    request: HttpRequest,
    text: str,
    *,
    level: int = messages.SUCCESS,
    status: int = 200,
    changed: bool = True,
    **extra: Any,
) -> HttpResponse:
    """htmx: the message in place (and the regions that show keys refresh); otherwise the
    message on the page the form came from."""
    if not request.htmx:  # type: ignore[attr-defined]
        messages.add_message(request, level, text)
        return redirect(_next(request))
    tag = messages.DEFAULT_TAGS[level]
    response = render(request, "cachepanel/_messages.html", {"panel_messages": [(tag, text)], **extra}, status=status)
    if changed:
        trigger_client_event(response, CHANGED)
    return response


def _invalid(request: HttpRequest, form: Any) -> HttpResponse:
    errors = "; ".join(f"{error}" for errors in form.errors.values() for error in errors)
    return _message(request, errors, level=messages.ERROR, status=422, changed=False)


def _unreachable(request: HttpRequest) -> HttpResponse:
    return _message(
        request, "Redis is unreachable: nothing was changed. Try again when it is back.",
        level=messages.ERROR, status=503, changed=False,
    )  # fmt: skip
