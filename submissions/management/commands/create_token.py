from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from submissions.models import ApiToken


class Command(BaseCommand):
    help = (
        "Make USERNAME a new API token, replacing any old one, and print it alone on stdout, for"
        " scripts. Only a hash of a token is stored, so an existing one cannot be printed again."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        # Kept so scripts written when the command could print the same token again still run:
        # every call now makes a new one.
        parser.add_argument("--regenerate", action="store_true", help="accepted; always the case")
        parser.add_argument("username")

    def handle(self, *args: Any, **options: Any) -> None:
        User = get_user_model()
        try:
            user = User.objects.get(**{User.USERNAME_FIELD: options["username"]})
        except User.DoesNotExist:
            raise CommandError(f"no user {options['username']!r}") from None
        replaced = ApiToken.objects.filter(user=user).exists()
        key = ApiToken.issue(user)
        if replaced:
            self.stderr.write(
                f"Replaced the API token of {options['username']}: the old one no longer works."
            )
        self.stdout.write(key)
