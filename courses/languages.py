"""Which language a person reads: pages follow the request, a worker's email its recipient."""

from __future__ import annotations

from typing import Any

from django.conf import settings


def recipient_language(user: Any) -> str:
    """The language to write to ``user`` in where no request says it (emails sent by a worker).

    The saved preference (``accounts.LanguagePreference``, reached by its reverse relation so
    nothing below ``accounts`` imports it), else the site's default.
    """
    preference = getattr(user, "language_preference", None)  # missing row: AttributeError
    return preference.language if preference is not None else settings.LANGUAGE_CODE
