from django.urls import path

from cachepanel import views

app_name = "cachepanel"
urlpatterns = [
    path("", views.overview, name="overview"),
    path("keys/", views.key_list, name="keys"),
    path("keys/detail/", views.key_detail, name="key"),
    path("keys/delete/", views.key_delete, name="key_delete"),
    path("keys/expire/", views.key_expire, name="key_expire"),
    path("flush/", views.flush, name="flush"),
    path("switches/", views.switches_save, name="switches"),
    path("generations/republish/", views.generations_republish, name="republish"),
]
