"""A signed-in user's language: saved when they pick it in the header, applied on every request.

Django's ``LocaleMiddleware`` chooses from the language cookie and the browser's
``Accept-Language``; a user who chose a language with the switch keeps it on every device they
sign in from (``UserLanguageMiddleware``, after authentication). Sign-in records the browser's
language for users who never chose, so emails a worker sends later are in a language they read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.utils import translation
from django.views import i18n
from django.views.decorators.http import require_POST

from accounts.models import LanguagePreference

SUPPORTED = dict(settings.LANGUAGES)


def chosen_language(user: Any) -> str | None:
    if not user.is_authenticated:
        return None
    preference = getattr(user, "language_preference", None)
    if preference is None or not preference.chosen or preference.language not in SUPPORTED:
        return None
    return str(preference.language)


class UserLanguageMiddleware:
    """Activate a signed-in user's chosen language (after ``LocaleMiddleware`` picked one)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        language = chosen_language(request.user)
        if language and language != getattr(request, "LANGUAGE_CODE", None):
            translation.activate(language)
            request.LANGUAGE_CODE = language
        return self.get_response(request)


@require_POST
def set_language(request: HttpRequest) -> HttpResponse:
    """Django's ``set_language`` (cookie and redirect), and a signed-in user's choice saved."""
    response = i18n.set_language(request)
    language = request.POST.get(i18n.LANGUAGE_QUERY_PARAMETER, "")
    if request.user.is_authenticated and language in SUPPORTED:
        LanguagePreference.objects.update_or_create(
            user=request.user, defaults={"language": language, "chosen": True}
        )
    return response


@receiver(user_logged_in, dispatch_uid="accounts.language.remember_browser_language")
def remember_browser_language(
    sender: Any, request: HttpRequest | None, user: Any, **_: Any
) -> None:
    """Keep the browser's language for a user who never chose one (their emails use it)."""
    if request is None:
        return
    language = translation.get_language_from_request(request)
    if language in SUPPORTED:
        LanguagePreference.objects.filter(user=user, chosen=False).update(language=language)
        LanguagePreference.objects.get_or_create(user=user, defaults={"language": language})
