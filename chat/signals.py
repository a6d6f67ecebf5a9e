from __future__ import annotations

from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver
from django.http import HttpRequest

from chat.models import Conversation
from chat.selectors import ANONYMOUS_KEY
from chat.tasks import popular_warm
from documents.services import generations_published
from ragcache import popular
from ragcache.client import CacheUnavailable
from ragcache.conf import conf


@receiver(user_logged_in, dispatch_uid="chat.conversations_carry_over")
def conversations_carry_over(sender: Any, request: HttpRequest | None, user: AbstractBaseUser, **kwargs: Any) -> None:
    """The conversations a visitor had before signing in become the user's."""
    session_key = request.session.pop(ANONYMOUS_KEY, None) if request is not None else None
    if session_key:
        Conversation.objects.filter(user__isnull=True, session_key=session_key).update(user=user, session_key="")


@receiver(generations_published, dispatch_uid="chat.popular_warm")
def popular_warm_soon(sender: Any, collection_ids: list[int], **kwargs: Any) -> None:
    """With warming on, answer the changed collections' popular questions again, once the
    burst of changes is over: one warming per collection per WARMING_DELAY seconds (0: a
    warming for every change, at once)."""
    if not conf()["WARMING"]:
        return
    delay = conf()["WARMING_DELAY"]
    try:
        due = [cid for cid in collection_ids if not delay or popular.warming_claim(cid, seconds=delay)]
    except CacheUnavailable:
        return  # nothing is cached now: nothing to warm
    if due:
        popular_warm.apply_async(args=[due], countdown=delay)
