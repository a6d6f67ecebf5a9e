from django.apps import AppConfig


class DocumentsConfig(AppConfig):
    name = "documents"

    def ready(self) -> None:
        from documents import checks, signals  # noqa: F401  (registers the system checks and signals)
