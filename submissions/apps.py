from django.apps import AppConfig


class SubmissionsConfig(AppConfig):
    name = "submissions"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Connects the signals that keep each student's standing up to date.
        # Registers the object store's start-up check.
        # Keeps API tokens working through Django's password re-hashing.
        from submissions import (
            checks,  # noqa: F401
            standings,  # noqa: F401
            tokens,  # noqa: F401
        )
