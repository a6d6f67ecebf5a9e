from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.utils.functional import lazy
from django.views.generic import RedirectView

from ragsite.views import healthz, metrics_view, readyz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics_view, name="metrics"),
    path("favicon.ico", RedirectView.as_view(url=lazy(static, str)("favicon.svg"))),  # for pages without the link
    path("documents/", include("documents.urls")),
    path("admin/cache/", include("cachepanel.urls")),  # before the admin's own catch-all URLs
    path("admin/", admin.site.urls),
    path("", include("chat.urls")),
]
