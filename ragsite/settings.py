"""Settings, read from the environment in this one place.

Entry points (manage.py, wsgi, asgi, the Celery app) first call
`ragsite.embedded.configure_environment()`, which fills DATABASE_URL and REDIS_URL
with embedded services when they are unset.
"""

from __future__ import annotations

import os
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from ragsite import redis_urls

BASE_DIR = Path(__file__).resolve().parent.parent
DEFAULT_SECRET_KEY = "django-insecure-ragsite-development-key"  # noqa: S105 (refused with DEBUG off)

env = environ.Env()

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default=DEFAULT_SECRET_KEY)
if not DEBUG and SECRET_KEY == DEFAULT_SECRET_KEY:
    raise ImproperlyConfigured("Set SECRET_KEY: the default key is for DEBUG=1 only.")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    # runserver then leaves static files to WhiteNoise, as in production: Django's own
    # handler raises (a 500) on a path that climbs out of the static folders.
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "django_htmx",
    "django_ratelimit",
    "documents",
    "chat",
    "ragcache",
    "cachepanel",
]

MIDDLEWARE = [
    "ragsite.requestid.RequestIdMiddleware",
    "ragsite.middleware.ServerTimingMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "ragsite.urls"
WSGI_APPLICATION = "ragsite.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": env.db_url("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/ragsite")}
# A pool per process (psycopg_pool): a request borrows a connection and gives it back, so
# none pays a connect, and the connections a process holds stay bounded however many
# threads serve. Size it to the server's threads per process.
DATABASES["default"]["CONN_MAX_AGE"] = 0  # the pool keeps the connections instead
# How many nearest chunks of the whole corpus the HNSW index gives a search, before its
# collections are picked out of them (pgvector's default, 40, leaves too few when a scope
# is part of the corpus).
RETRIEVAL_ANN_CANDIDATES = env.int("RETRIEVAL_ANN_CANDIDATES", default=100)
DATABASES["default"].setdefault("OPTIONS", {})["options"] = f"-c hnsw.ef_search={RETRIEVAL_ANN_CANDIDATES}"
DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
    "min_size": env.int("DATABASE_POOL_MIN", default=1),
    "max_size": env.int("DATABASE_POOL_MAX", default=10),
    "timeout": env.float("DATABASE_POOL_TIMEOUT", default=10.0),  # seconds a request waits for a connection
}

# One Redis (redis://), the primary Redis Sentinel names (sentinel://) or a Redis Cluster
# (redis+cluster://, for the cache only): ragsite/redis_urls.py.
REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")
CACHES = {"default": {**redis_urls.cache_settings(REDIS_URL), "KEY_PREFIX": "ragsite"}}

# The broker is the same Redis unless CELERY_BROKER_URL says otherwise.
_broker_is_redis_url = "CELERY_BROKER_URL" not in os.environ
# (broker_url only when it is needed: it refuses a Redis Cluster, which may serve the cache.)
CELERY_BROKER_URL = redis_urls.broker_url(REDIS_URL) if _broker_is_redis_url else env.str("CELERY_BROKER_URL")
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_ACKS_LATE = True
# A task taken by a worker that died is delivered again after this many seconds; longer
# than any one ingestion takes (one that outlasts it runs twice, harmlessly).
CELERY_VISIBILITY_TIMEOUT = env.int("CELERY_VISIBILITY_TIMEOUT", default=900)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    **(redis_urls.broker_transport_options(REDIS_URL) if _broker_is_redis_url else {}),
    "visibility_timeout": CELERY_VISIBILITY_TIMEOUT,
    "unacked_restore_interval": max(1, min(10, CELERY_VISIBILITY_TIMEOUT // 4)),
    "unacked_restore_throttle": 1,
}
INGEST_MAX_ATTEMPTS = env.int("INGEST_MAX_ATTEMPTS", default=3)
# Documents manage.py ingest and each worker ingest at once: while one is parsed or stored
# (on one core), the other's chunks keep every core embedding. Measured on 2 cores: 2 beat 1 and 3.
INGEST_CONCURRENCY = env.int("INGEST_CONCURRENCY", default=2)
# Tasks run on threads of the worker's process, which loads the embedding model once for all.
CELERY_WORKER_POOL = "threads"
CELERY_WORKER_CONCURRENCY = max(1, INGEST_CONCURRENCY)
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "ingest"
CELERY_TASK_ROUTES = {"documents.tasks.*": {"queue": "ingest"}, "chat.tasks.*": {"queue": "cache"}}
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# The worker logs through LOGGING as the web does: the same format, the request id.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env.path("STATIC_ROOT", default=str(BASE_DIR / ".data" / "staticfiles"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
# Without collectstatic (DEBUG, tests), serve straight from the static folders.
WHITENOISE_USE_FINDERS = WHITENOISE_AUTOREFRESH = DEBUG
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGIN_URL = "chat:sign_in"
LOGIN_REDIRECT_URL = "chat:home"

# Uploads. The whole file is read into memory for hashing and stored in PostgreSQL,
# so the limit also bounds the memory one upload can take.
UPLOAD_MAX_BYTES = env.int("UPLOAD_MAX_BYTES", default=20 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440

# Embeddings. The Chunk.embedding column has EMBEDDING_DIMENSIONS dimensions (384 in
# the initial migration); another size needs a migration of the column and a re-ingestion.
EMBEDDING_PROVIDER = env.str("EMBEDDING_PROVIDER", default="onnx")
EMBEDDING_PROVIDERS = {
    "onnx": "documents.embedding.onnx.OnnxEmbedder",  # all-MiniLM-L6-v2, int8, on onnxruntime
    "torch": "documents.embedding.local.LocalEmbedder",  # the fp32 reference: requirements-torch.txt
    "openai": "documents.embedding.openai.OpenAIEmbedder",
    "local": "documents.embedding.onnx.OnnxEmbedder",  # the local model's name before it ran on onnxruntime
}
EMBEDDING_DIMENSIONS = env.int("EMBEDDING_DIMENSIONS", default=384)
LOCAL_EMBEDDING_MODEL = "all-MiniLM-L6-v2"
ONNX_EMBEDDING_MODEL = "all-MiniLM-L6-v2-onnx-int8"
EMBEDDING_THREADS = env.int("EMBEDDING_THREADS", default=0)  # cores the onnx provider uses; 0: all
OPENAI_EMBEDDING_MODEL = env.str("OPENAI_EMBEDDING_MODEL", default="text-embedding-3-small")
EMBEDDING_BATCH_SIZE = env.int("EMBEDDING_BATCH_SIZE", default=4)  # measured on 2 cores: 2-4 beat 8, 16, 32
OPENAI_EMBEDDING_BATCH_SIZE = env.int("OPENAI_EMBEDDING_BATCH_SIZE", default=64)  # inputs per request

# Chunks are measured in the embedder's own tokens (MiniLM reads at most 256,
# special tokens included; anything longer is silently cut off).
CHUNK_SIZE_TOKENS = env.int("CHUNK_SIZE_TOKENS", default=200)
CHUNK_OVERLAP_TOKENS = env.int("CHUNK_OVERLAP_TOKENS", default=40)

OPENAI_API_KEY = env.str("OPENAI_API_KEY", default="")
OPENAI_BASE_URL = env.str("OPENAI_BASE_URL", default="") or None
OPENAI_CHAT_MODEL = env.str("OPENAI_CHAT_MODEL", default="gpt-4o-mini")
OPENAI_TIMEOUT_SECONDS = env.float("OPENAI_TIMEOUT_SECONDS", default=30.0)
OPENAI_MAX_RETRIES = env.int("OPENAI_MAX_RETRIES", default=2)
OPENAI_TEMPERATURE = env.float("OPENAI_TEMPERATURE", default=0.0)
# USD per million (prompt, completion) tokens, for the cost shown with each answer.
OPENAI_PRICES_PER_MILLION: dict[str, tuple[float, float]] = {
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1": (2.00, 8.00),
}
# Answers are generated by `openai` when an endpoint is configured, else `extractive`.
GENERATOR = env.str("GENERATOR", default="")
# An answer generated above this temperature is not deterministic enough to cache.
CACHE_MAX_TEMPERATURE = env.float("CACHE_MAX_TEMPERATURE", default=0.3)

# The speed layer (ragcache/conf.py has every setting and its default; docs/caching.md why).
RAGCACHE = {
    "ENABLED": {
        "emb": env.bool("CACHE_EMBEDDINGS", default=True),
        "ret": env.bool("CACHE_RETRIEVALS", default=True),
        "ans": env.bool("CACHE_ANSWERS", default=True),
        "sem": env.bool("CACHE_SEMANTIC", default=True),
    },
    "SEM_THRESHOLD": env.float("CACHE_SEMANTIC_THRESHOLD", default=0.7),
    "WARMING": env.bool("CACHE_WARMING", default=False),
    "WARMING_QUESTIONS": env.int("CACHE_WARMING_QUESTIONS", default=20),
    "SEM_CHECKS": {
        "words": env.bool("CACHE_SEMANTIC_CHECK_WORDS", default=True),
        "context": env.bool("CACHE_SEMANTIC_CHECK_CONTEXT", default=False),
    },
    # Asks waiting for another's answer wait no longer than that answer's LLM call may take.
    "LOCK_WAIT": {"ans": OPENAI_TIMEOUT_SECONDS},
}
# /metrics answers staff, and a scraper sending "Authorization: Bearer {METRICS_TOKEN}".
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
# Workers write a heartbeat this often; /readyz wants one newer than WORKER_SEEN_SECONDS.
WORKER_HEARTBEAT_SECONDS = env.float("WORKER_HEARTBEAT_SECONDS", default=10.0)
WORKER_SEEN_SECONDS = env.float("WORKER_SEEN_SECONDS", default=60.0)
# Each web and worker process publishes, this often, a change whose publish on commit
# failed (ragsite/sweeper.py): the bound on a lost publish's stale window.
PUBLISH_SWEEP_SECONDS = env.float("PUBLISH_SWEEP_SECONDS", default=2.0)

# Retrieval: "hybrid" (pgvector + full-text, fused by reciprocal rank) or "dense".
RETRIEVAL_MODE = env.str("RETRIEVAL_MODE", default="hybrid")
RETRIEVAL_TOP_K = env.int("RETRIEVAL_TOP_K", default=5)
RETRIEVAL_CANDIDATES = env.int("RETRIEVAL_CANDIDATES", default=10)  # per side, before fusion
# The full-text side's weight in the fusion, the dense side's being 1 (tuned by `make eval`).
RETRIEVAL_FULL_TEXT_WEIGHT = env.float("RETRIEVAL_FULL_TEXT_WEIGHT", default=0.75)
# The offline answerer declines when no passage is this similar to the question (cosine);
# calibrated by `make eval` on the questions its sets hold that the corpus cannot answer.
ANSWER_MIN_SIMILARITY = env.float("ANSWER_MIN_SIMILARITY", default=0.41)
QUESTION_MAX_CHARS = env.int("QUESTION_MAX_CHARS", default=2000)
# Questions one caller may ask (per user, or per address when not signed in); "" for no limit.
ASK_RATE = env.str("ASK_RATE", default="30/m")
RATELIMIT_USE_CACHE = "default"
# Where the caller's address is: REMOTE_ADDR, or behind a proxy the header it sets (for
# example HTTP_X_REAL_IP): behind a proxy, REMOTE_ADDR is the proxy's, for everyone.
RATELIMIT_IP_META_KEY = env.str("RATELIMIT_IP_META_KEY", default="REMOTE_ADDR")

# Trusted only behind a proxy that sets it (and strips it from clients): anyone could send it.
if env.bool("TRUST_X_FORWARDED_PROTO", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
if not DEBUG:
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    # Off only where no TLS is in front (a local Docker Compose run).
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=True)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    # The header only permits submission to the browsers' preload list; nothing is sent.
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
    SECURE_CONTENT_TYPE_NOSNIFF = True

# Every line carries the request id (ragsite/requestid.py); LOG_FORMAT=json for collectors.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "ragsite.requestid.RequestIdFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"},
        "json": {"()": "ragsite.requestid.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if env.str("LOG_FORMAT", default="plain") == "json" else "plain",
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"pgserver": {"level": "WARNING"}},
}
