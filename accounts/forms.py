"""Password reset for every account with an email, including those a roster import created."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from typing import Any

from django.contrib.auth.forms import PasswordResetForm
from django.contrib.auth.models import User


class AnyAccountPasswordResetForm(PasswordResetForm):
    """Django's form skips accounts with an unusable password (it assumes they sign in some
    other way); roster accounts start with one, and a reset is how their students get in."""

    def get_users(self, email: str) -> Iterator[Any]:
        # Same matching as Django's (case-insensitive, active accounts only), without the
        # usable-password filter. The form sends the same page whether or not one matched.
        for user in User.objects.filter(email__iexact=email, is_active=True):
            if _folded(user.email) == _folded(email):
                yield user


def _folded(email: str) -> str:
    return unicodedata.normalize("NFKC", email).casefold()
