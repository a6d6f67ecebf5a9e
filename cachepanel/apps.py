from django.apps import AppConfig


class CachepanelConfig(AppConfig):
    name = "cachepanel"
