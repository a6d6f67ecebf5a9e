from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("documents/", include("documents.urls")),
    path("admin/", admin.site.urls),
    path("", include("chat.urls")),
]
