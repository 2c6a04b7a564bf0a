"""A signed-in user's language: saved when they pick it in the header, applied on every request.

Django's ``LocaleMiddleware`` chooses from the language cookie and the browser's
``Accept-Language``; a user who chose a language with the switch keeps it on every device they
sign in from: sign-in copies the saved choice into the session, and ``UserLanguageMiddleware``
(after authentication) applies it from there, so a page costs no query for it. Sign-in also
records the browser's language for users who never chose, so emails a worker sends later are
in a language they read.
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
#: the signed-in user's chosen language, copied from ``LanguagePreference`` at sign-in
SESSION_KEY = "accounts_language"


def chosen_language(user: Any) -> str | None:
    """The language ``user`` chose with the switch, if any (one query)."""
    preference = LanguagePreference.objects.filter(user=user, chosen=True).first()
    if preference is None or preference.language not in SUPPORTED:
        return None
    return str(preference.language)


class UserLanguageMiddleware:
    """Activate a signed-in user's chosen language (after ``LocaleMiddleware`` picked one)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        language = request.session.get(SESSION_KEY) if request.user.is_authenticated else None
        if language in SUPPORTED and language != getattr(request, "LANGUAGE_CODE", None):
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
        request.session[SESSION_KEY] = language
    return response


@receiver(user_logged_in, dispatch_uid="accounts.language.remember_browser_language")
def remember_browser_language(
    sender: Any, request: HttpRequest | None, user: Any, **_: Any
) -> None:
    """Apply a saved choice from now on; for a user who never chose, keep the browser's
    language (their emails use it)."""
    if request is None:
        return
    chosen = chosen_language(user)
    if chosen:
        request.session[SESSION_KEY] = chosen
        return
    language = translation.get_language_from_request(request)
    if language in SUPPORTED:
        LanguagePreference.objects.filter(user=user, chosen=False).update(language=language)
        LanguagePreference.objects.get_or_create(user=user, defaults={"language": language})
