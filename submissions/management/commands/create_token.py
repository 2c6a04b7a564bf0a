from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from submissions.models import ApiToken


class Command(BaseCommand):
    help = "Print USERNAME's API token (creating it if needed) alone on stdout, for scripts."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument(
            "--regenerate", action="store_true", help="replace the token; the old one stops working"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        User = get_user_model()
        try:
            user = User.objects.get(**{User.USERNAME_FIELD: options["username"]})
        except User.DoesNotExist:
            raise CommandError(f"no user {options['username']!r}") from None
        token = ApiToken.for_user(user, regenerate=options["regenerate"])
        self.stdout.write(token.key)
