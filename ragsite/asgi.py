import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ragsite.settings")
application = get_asgi_application()

from documents.embedding import warm_up  # noqa: E402 (needs the apps loaded above)

warm_up()
