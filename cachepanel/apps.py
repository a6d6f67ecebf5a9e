from django.apps import AppConfig


class CachepanelConfig(AppConfig):
    name = "cachepanel"
    verbose_name = "Speed layer"
