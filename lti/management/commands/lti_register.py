"""Register an LMS (LTI 1.3 platform), or update its registration, and print the URLs to enter
there as one JSON object."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.urls import reverse

from lti.tool import registration_save


class Command(BaseCommand):
    help = (
        "Register an LTI 1.3 platform (running it again updates the registration; the"
        " deployments named are active) and print the tool's URLs to enter in the LMS."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--issuer", required=True)
        parser.add_argument("--client-id", required=True)
        parser.add_argument("--deployment-id", action="append", required=True, default=None)
        parser.add_argument("--auth-url", required=True, help="OIDC authorisation endpoint")
        parser.add_argument("--token-url", required=True, help="OAuth 2 token endpoint")
        parser.add_argument("--keyset-url", required=True, help="the platform's JWKS URL")
        parser.add_argument("--name", default="", help="a name for the admin (default: issuer)")
        parser.add_argument(
            "--site-url", default=settings.SITE_URL, help="this site's URL (default: SITE_URL)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        registration = registration_save(
            issuer=options["issuer"],
            client_id=options["client_id"],
            deployment_ids=options["deployment_id"],
            auth_url=options["auth_url"],
            token_url=options["token_url"],
            keyset_url=options["keyset_url"],
            name=options["name"],
        )
        site = options["site_url"].rstrip("/")
        launch = site + reverse("lti_launch")
        urls = {
            "login_url": site + reverse("lti_login", args=[registration.uuid]),
            "launch_url": launch,
            "jwks_url": site + reverse("lti_jwks"),
            # Deep linking requests arrive at the launch URL too; LMSs ask for it separately.
            "deep_linking_url": launch,
        }
        self.stdout.write(json.dumps(urls))
