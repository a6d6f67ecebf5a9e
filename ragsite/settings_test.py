"""Settings for the test suite. conftest.py points the database, the cache and the
Celery broker at services the test session starts for itself."""

import os

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production")
os.environ.setdefault("ASK_RATE", "")  # the rate limit's own tests set one; others ask freely

from ragsite.settings import *  # noqa: E402,F403

DEBUG = False
SECURE_SSL_REDIRECT = False
CELERY_TASK_ALWAYS_EAGER = True
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests
# No collectstatic before tests: plain static URLs instead of the hashed manifest.
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}  # noqa: F405
WHITENOISE_USE_FINDERS = WHITENOISE_AUTOREFRESH = True
