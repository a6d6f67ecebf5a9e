from django.contrib import admin
from django.urls import include, path

from documents.views import home

urlpatterns = [
    path("", home, name="home"),
    path("documents/", include("documents.urls")),
    path("admin/", admin.site.urls),
]
