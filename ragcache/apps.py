from django.apps import AppConfig


class RagcacheConfig(AppConfig):
    name = "ragcache"
