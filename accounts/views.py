"""The account pages: sign-in (with the university's button when configured), an invitation's
set-password page, and Django's password reset and change views with this site's templates."""

from __future__ import annotations

import logging
from typing import Any

from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_client_ip_address, get_lockout_response
from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import SetPasswordForm
from django.contrib.auth.models import User
from django.contrib.auth.signals import user_login_failed
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse_lazy

from accounts.forms import AnyAccountPasswordResetForm
from accounts.oidc import oidc_configured
from accounts.saml import saml_configured
from accounts.throttle import reset_request_admit
from accounts.tokens import invitation_tokens

logger = logging.getLogger(__name__)


class SignInView(auth_views.LoginView):
    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["oidc_provider_name"] = settings.OIDC_PROVIDER_NAME if oidc_configured() else ""
        context["saml_provider_name"] = settings.SAML_PROVIDER_NAME if saml_configured() else ""
        return context


class InvitationAcceptView(auth_views.PasswordResetConfirmView):
    """An invitation is a password reset with its own token: setting the password spends it."""

    token_generator = invitation_tokens
    template_name = "accounts/invitation_accept.html"
    success_url = reverse_lazy("invitation_done")
    # Sign in with the new password, as a student will from then on.
    post_reset_login = False


class PasswordResetView(auth_views.PasswordResetView):
    """Sends the link through a worker, at most as often as ``accounts.throttle`` admits; a
    throttled request gets the same redirect and page as any other."""

    form_class = AnyAccountPasswordResetForm
    template_name = "accounts/password_reset_form.html"
    email_template_name = "accounts/email/password_reset.txt"
    subject_template_name = "accounts/email/password_reset_subject.txt"

    def form_valid(self, form: Any) -> HttpResponse:
        address = get_client_ip_address(self.request) or ""
        if not reset_request_admit(address, form.cleaned_data["email"]):
            logger.warning("password reset from %s throttled: no email sent", address)
            return HttpResponseRedirect(self.get_success_url())
        # Links point at SITE_URL like every other email, not at whatever Host the request had.
        self.extra_email_context = {"site_url": settings.SITE_URL}
        return super().form_valid(form)


class PasswordChangeView(auth_views.PasswordChangeView):
    """A wrong old password counts as a failed sign-in of the account from this address
    (django-axes, ``AXES_*``): after ``LOGIN_FAILURE_LIMIT`` of them, this page and the sign-in
    refuse that pair for the cool-off with the same lockout page, so a session left open is no
    way to guess the password."""

    template_name = "accounts/password_change_form.html"

    def get_form_class(self) -> Any:
        # An account that only ever signed in through the university has no old password to
        # enter, so it sets one instead.
        user = self.request.user
        if isinstance(user, User) and not user.has_usable_password():
            return SetPasswordForm
        return super().get_form_class()

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not AxesProxyHandler.is_allowed(request, self._credentials()):
            # As at sign-in, an attempt during the lockout counts and starts the wait again.
            self._failure_record()
            return get_lockout_response(request, None, self._credentials())
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form: Any) -> HttpResponse:
        if form.has_error("old_password", "password_incorrect"):
            # At the limit, axes marks the request and its middleware answers with the
            # lockout page instead of this one.
            self._failure_record()
        return super().form_invalid(form)

    def _credentials(self) -> dict[str, str]:
        # What axes reads the account from (its default AXES_USERNAME_FORM_FIELD).
        return {"username": self.request.user.get_username()}

    def _failure_record(self) -> None:
        user_login_failed.send(
            sender=type(self), credentials=self._credentials(), request=self.request
        )
