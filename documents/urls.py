from django.urls import path

from documents import views

app_name = "documents"
urlpatterns = [
    path("upload/", views.upload, name="upload"),
    path("<int:document_id>/progress/", views.progress, name="progress"),
    path("<int:document_id>/retry/", views.retry, name="retry"),
    path("<int:document_id>/delete/", views.delete, name="delete"),
]
