"""Rotate the tool's signing key: a new key signs from now on, the older ones stay in the key
set (platforms cache it, tokens signed before stay valid) until ``--retire=KID`` (with
the equals sign: a key id is base64url and may begin with "-", which argparse would take for
an option)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from lti_tool.models import Key

from lti.tool import key_retire, key_rotate, tool_key


class Command(BaseCommand):
    help = "Make a new signing key (the old ones stay published) or retire an old key."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--retire",
            metavar="KID",
            help="stop publishing this older key (write --retire=KID: a key id may begin with -)",
        )
        parser.add_argument("--list", action="store_true", help="list the published keys")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["list"]:
            signing = tool_key()
            for key in Key.objects.active().order_by("datetime_created"):
                mark = " (signs)" if key.pk == signing.pk else ""
                self.stdout.write(f"{key} created {key.datetime_created:%Y-%m-%d %H:%M}{mark}")
            return
        if options["retire"]:
            if not key_retire(options["retire"]):
                raise CommandError(
                    f"no older published key {options['retire']} (the signing key stays)"
                )
            self.stdout.write(f"retired {options['retire']}")
            return
        key = key_rotate()
        older = Key.objects.active().exclude(pk=key.pk).count()
        self.stdout.write(f"new signing key {key}; {older} older key(s) still published")
