from django.contrib import admin
from django.urls import include, path

from ragsite.views import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("documents/", include("documents.urls")),
    path("admin/cache/", include("cachepanel.urls")),  # before the admin's own catch-all URLs
    path("admin/", admin.site.urls),
    path("", include("chat.urls")),
]
