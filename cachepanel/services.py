"""The panel's actions: each one writes through ragcache and leaves an entry in the admin log."""

from __future__ import annotations

from django.contrib.admin.models import CHANGE, DELETION, LogEntry
from django.contrib.contenttypes.models import ContentType

from cachepanel.models import CachePanel
from ragcache import generations, invalidation, switches


def _log(*, user_id: int, flag: int, target: str, message: str) -> None:
    LogEntry.objects.create(
        user_id=user_id,
        content_type=ContentType.objects.get_for_model(CachePanel, for_concrete_model=False),
        object_repr=target[:200],
        action_flag=flag,
        change_message=message,
    )


def _keys(count: int) -> str:
    return f"{count:,} key{'' if count == 1 else 's'}"


def cache_key_delete(*, user_id: int, key: str) -> int:
    deleted = invalidation.key_delete(key)
    _log(user_id=user_id, flag=DELETION, target=key, message=f"Deleted the key ({_keys(deleted)} touched).")
    return deleted


def cache_key_expire(*, user_id: int, key: str, seconds: int, extend: bool) -> int | None:
    ttl = invalidation.key_expire(key, seconds=seconds, extend=extend)
    if ttl is not None:
        verb = f"Extended the TTL by {seconds:,} s" if extend else f"Set the TTL to {seconds:,} s"
        _log(user_id=user_id, flag=CHANGE, target=key, message=f"{verb}: now {ttl:,} s ({_keys(1)} touched).")
    return ttl


def cache_flush(*, user_id: int, target: str, document_id: int | None = None) -> int:
    """Flush a layer (or doc, gen, lock, stats), the entries citing a document, or "all"."""
    if target == "all":
        deleted, what = invalidation.flush_all(), "every key of the app"
    elif target == "document":
        assert document_id is not None
        deleted = invalidation.invalidate_document(document_id, fail_open=False)
        what = f"the entries citing document {document_id}"
    else:
        deleted, what = invalidation.flush_layer(target), f"the {target} layer"
    _log(user_id=user_id, flag=DELETION, target=f"cache: {what}", message=f"Flushed {what} ({_keys(deleted)} touched).")
    return deleted


def cache_switches_set(
    *, user_id: int, layers: dict[str, bool], sem_threshold: float, checks: dict[str, bool]
) -> dict[str, str]:
    overrides = switches.switches_set(layers=layers, sem_threshold=sem_threshold, checks=checks)
    shown = switches_described(layers, checks)
    _log(
        user_id=user_id, flag=CHANGE, target="cache: run-time switches",
        message=f"Set {shown}, semantic threshold {sem_threshold:.2f} ({_keys(1)} touched).",
    )  # fmt: skip
    return overrides


def switches_described(layers: dict[str, bool], checks: dict[str, bool]) -> str:
    described = [f"{layer} {'on' if on else 'off'}" for layer, on in layers.items()]
    return ", ".join(described + [f"{check} check {'on' if on else 'off'}" for check, on in checks.items()])


def cache_switches_reset(*, user_id: int) -> None:
    switches.switches_reset()
    _log(user_id=user_id, flag=CHANGE, target="cache: run-time switches", message="Reset to the settings' defaults.")


def cache_generations_republish(*, user_id: int) -> list[int]:
    raised = generations.republish()
    copies = f"{len(raised)} generation cop{'y' if len(raised) == 1 else 'ies'}"
    touched = 1 if raised else 0  # the copies share one hash
    _log(user_id=user_id, flag=CHANGE, target="cache: generation copies",
         message=f"Republished {copies} ({_keys(touched)} touched).")  # fmt: skip
    return raised
