import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ragsite.settings")
application = get_wsgi_application()

from documents.embedding import warm_up  # noqa: E402 (needs the apps loaded above)
from ragsite import sweeper  # noqa: E402

warm_up()
sweeper.start()
