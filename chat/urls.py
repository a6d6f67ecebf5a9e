from django.contrib.auth.views import LoginView, LogoutView
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
    # The admin's own login and logout serve staff only; readers sign in here.
    path("sign-in/", LoginView.as_view(redirect_authenticated_user=True), name="sign_in"),
    path("sign-out/", LogoutView.as_view(next_page="chat:home"), name="sign_out"),
]
