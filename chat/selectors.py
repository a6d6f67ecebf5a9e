from __future__ import annotations

import re
from dataclasses import dataclass

from django.db.models import QuerySet
from django.http import HttpRequest

from chat.models import Conversation, Message
from documents.models import Chunk, Document


@dataclass(frozen=True)
class Owner:
    """Whose conversations these are: a signed-in user, or an anonymous session."""

    user_id: int | None
    session_key: str

    def conversations(self) -> QuerySet[Conversation]:
        if self.user_id is not None:
            return Conversation.objects.filter(user_id=self.user_id)
        return Conversation.objects.filter(user__isnull=True, session_key=self.session_key)


# Signing in gives the session a new key but keeps its data: the key the anonymous
# conversations are filed under is kept there for chat.signals to hand them over.
ANONYMOUS_KEY = "chat_anonymous_session_key"
FENCE_WORD = re.compile(r"`{3,}[^`\s]*")
# Between two words of a chunk, the document's text may hold line breaks, fences (a cut code
# block's pieces are fenced apart) and the marks of an h5 or h6 heading. Possessive: the
# search stays linear however long a run of backticks.
PASSAGE_GAP = r"(?:\s|`{3,}+[^`\s]*+|#{1,6}+(?=\s))++"


def owner_for(request: HttpRequest) -> Owner:
    if request.user.is_authenticated:
        return Owner(user_id=request.user.pk, session_key="")
    if not request.session.session_key:
        request.session.save()
    session_key = request.session.session_key or ""
    if request.session.get(ANONYMOUS_KEY) != session_key:
        request.session[ANONYMOUS_KEY] = session_key
    return Owner(user_id=None, session_key=session_key)


def assistant_message_for(*, owner: Owner, message_id: int) -> Message | None:
    return (
        Message.objects.filter(conversation__in=owner.conversations(), role=Message.Role.ASSISTANT, pk=message_id)
        .select_related("conversation__user")  # whose access the answer is checked against
        .first()
    )


def document_passage(*, document: Document, content_hash: str) -> tuple[int, int] | None:
    """Where a chunk is in the document's text, as (start, end), or None if it is gone."""
    if not re.fullmatch(r"[0-9a-f]{64}", content_hash):  # not a content hash: nothing to look up
        return None
    chunk = Chunk.objects.filter(document=document, content_hash=content_hash).only("text").first()
    if chunk is None:
        return None
    # Chunks join sentences with single spaces where the text may break lines, and fence
    # each piece of a code block they cut.
    words = [word for word in chunk.text.split() if not FENCE_WORD.fullmatch(word)]
    match = re.search(PASSAGE_GAP.join(re.escape(word) for word in words), document.text)
    return None if match is None else (match.start(), match.end())
