import logging

from django.apps import AppConfig
from django.conf import settings

logger = logging.getLogger("leaderboard")


class LeaderboardConfig(AppConfig):
    name = "leaderboard"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The opt-out is legitimate (a lab network without TLS) but must never go unnoticed.
        if settings.SERVE_PLAIN_HTTP and not settings.DEBUG:
            logger.warning(
                "SERVE_PLAIN_HTTP is set: this site serves plain HTTP, so passwords, session"
                " cookies and API tokens cross the network unencrypted; put it behind the TLS"
                " proxy (deploy/Caddyfile) and unset SERVE_PLAIN_HTTP"
            )
