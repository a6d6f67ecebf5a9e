from django.contrib.auth.views import LogoutView
from django.urls import path

from chat import views

app_name = "chat"
urlpatterns = [
    path("", views.chat_page, name="home"),
    path("c/<int:conversation_id>/", views.chat_page, name="conversation"),
    path("ask/", views.ask, name="ask"),
    path("messages/<int:message_id>/stream/", views.message_stream, name="stream"),
    path("sources/<int:document_id>/", views.source, name="source"),
    path("api/ask", views.api_ask, name="api_ask"),
    path("sign-out/", LogoutView.as_view(next_page="chat:home"), name="sign_out"),  # the admin's signs out staff only
]
