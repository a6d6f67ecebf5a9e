from __future__ import annotations

from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver
from django.http import HttpRequest

from chat.models import Conversation
from chat.selectors import ANONYMOUS_KEY


@receiver(user_logged_in, dispatch_uid="chat.conversations_carry_over")
def conversations_carry_over(sender: Any, request: HttpRequest | None, user: AbstractBaseUser, **kwargs: Any) -> None:
    """The conversations a visitor had before signing in become the user's."""
    session_key = request.session.pop(ANONYMOUS_KEY, None) if request is not None else None
    if session_key:
        Conversation.objects.filter(user__isnull=True, session_key=session_key).update(user=user, session_key="")
