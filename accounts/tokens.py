"""Invitation links: Django's password-reset tokens with their own salt and lifetime.

The token hashes the account's password and last sign-in, so setting a password (or signing in)
spends it: a link works once without any state kept for it. Its lifetime is ``INVITE_DAYS``
rather than ``PASSWORD_RESET_TIMEOUT`` (an invitation waits in a student's inbox for days, a
reset link should not).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.utils.crypto import constant_time_compare
from django.utils.http import base36_to_int


class InvitationTokenGenerator(PasswordResetTokenGenerator):
    key_salt = "accounts.tokens.InvitationTokenGenerator"

    def check_token(self, user: Any, token: str | None) -> bool:
        # The parent's check is the same except for its fixed timeout setting.
        if not (user and token):
            return False
        try:
            ts_b36, _ = token.split("-")
            ts = base36_to_int(ts_b36)
        except ValueError:
            return False
        if not any(
            constant_time_compare(self._make_token_with_timestamp(user, ts, secret), token)
            for secret in [self.secret, *self.secret_fallbacks]
        ):
            return False
        return self._num_seconds(self._now()) - ts <= settings.INVITE_DAYS * 24 * 3600


invitation_tokens = InvitationTokenGenerator()
