"""The account pages: sign-in (with the university's button when configured), an invitation's
set-password page, and Django's password reset and change views with this site's templates."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import SetPasswordForm
from django.contrib.auth.models import User
from django.urls import reverse_lazy

from accounts.forms import AnyAccountPasswordResetForm
from accounts.oidc import oidc_configured
from accounts.tokens import invitation_tokens


class SignInView(auth_views.LoginView):
    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["oidc_provider_name"] = settings.OIDC_PROVIDER_NAME if oidc_configured() else ""
        return context


class InvitationAcceptView(auth_views.PasswordResetConfirmView):
    """An invitation is a password reset with its own token: setting the password spends it."""

    token_generator = invitation_tokens
    template_name = "accounts/invitation_accept.html"
    success_url = reverse_lazy("invitation_done")
    # Sign in with the new password, as a student will from then on.
    post_reset_login = False


class PasswordResetView(auth_views.PasswordResetView):
    form_class = AnyAccountPasswordResetForm
    template_name = "accounts/password_reset_form.html"
    email_template_name = "accounts/email/password_reset.txt"
    subject_template_name = "accounts/email/password_reset_subject.txt"

    def form_valid(self, form: Any) -> Any:
        # Links point at SITE_URL like every other email, not at whatever Host the request had.
        self.extra_email_context = {"site_url": settings.SITE_URL}
        return super().form_valid(form)


class PasswordChangeView(auth_views.PasswordChangeView):
    template_name = "accounts/password_change_form.html"

    def get_form_class(self) -> Any:
        # An account that only ever signed in through the university has no old password to
        # enter, so it sets one instead.
        user = self.request.user
        if isinstance(user, User) and not user.has_usable_password():
            return SetPasswordForm
        return super().get_form_class()
