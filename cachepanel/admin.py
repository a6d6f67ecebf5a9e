"""Lists the panel on the admin index, for those who may look; the panel is at /admin/cache/."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import URLPattern, path, reverse

from cachepanel.models import CachePanel

VIEW, MANAGE = "cachepanel.view_cache", "cachepanel.manage_cache"


@admin.register(CachePanel)
class CachePanelAdmin(admin.ModelAdmin):
    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(VIEW)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm(VIEW)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse("cachepanel:overview"))

    def get_urls(self) -> list[URLPattern]:
        # The model has no table: only the index's link, which leads to the panel.
        return [path("", self.admin_site.admin_view(self.changelist_view), name="cachepanel_cachepanel_changelist")]
