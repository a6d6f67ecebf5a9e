from __future__ import annotations

from django.db import models


class CachePanel(models.Model):
    """No table: the anchor of the panel's two permissions and of its admin log entries."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("view_cache", "Can inspect the cache (keys, values, statistics)"),
            ("manage_cache", "Can change the cache (delete, flush, TTLs, switches)"),
        ]
        verbose_name = verbose_name_plural = "cache panel"

    def __str__(self) -> str:
        return "cache panel"
