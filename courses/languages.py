"""Which language a person reads: pages follow the request, a worker's email its recipient."""

from __future__ import annotations

from typing import Any

from django.conf import settings


def recipient_language(user: Any, default: str | None = None) -> str:
    """The language to write to ``user`` in, wherever the request is not theirs.

    The saved preference (``accounts.LanguagePreference``, reached by its reverse relation so
    nothing below ``accounts`` imports it), else ``default``, else the site's default
    (``LANGUAGE_CODE``): a worker has no request, and an invitation goes to someone who has
    never signed in.
    """
    preference = getattr(user, "language_preference", None)  # missing row: AttributeError
    if preference is not None:
        return str(preference.language)
    return default or settings.LANGUAGE_CODE
