from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """The account life cycle: invitations, password reset and change, single sign-on, and every
    page under ``/accounts/`` (the profile with its API token included).

    It sits above ``courses`` (an invitation names a semester and a handle) and ``submissions``
    (the profile shows the student's API token), and below the site (README, "Architecture");
    neither imports it, so roster import with ``--invite`` is this app's command, wrapping
    ``courses.roster``.
    """

    name = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Connects the sign-in signal that remembers the browser's language.
        from accounts import language  # noqa: F401
