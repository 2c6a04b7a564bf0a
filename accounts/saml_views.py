"""The SAML pages (``/accounts/saml/…``) over djangosaml2's views, imported on first use
through :func:`accounts.saml.saml_view` (see ``accounts.saml`` for the whole design)."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import authenticate
from django.contrib.auth.mixins import LoginRequiredMixin
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from djangosaml2 import views as saml_views
from djangosaml2.cache import OutstandingQueriesCache
from saml2.config import SPConfig

from accounts.saml import ProviderUnavailable, saml_configured, sp_config, sp_metadata_config

logger = logging.getLogger("accounts.saml")


class SAMLOnly:
    """Every SAML page is off (404, whatever the method) unless SAML is configured."""

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not saml_configured():
            raise Http404("SAML sign-in is not configured")
        return super().dispatch(request, *args, **kwargs)  # type: ignore[misc]


def _failure(request: HttpRequest, status: int = 403) -> HttpResponse:
    return render(
        request,
        "accounts/saml_failed.html",
        {
            "provider": settings.SAML_PROVIDER_NAME,
            "reason": getattr(request, "saml_refused", ""),
            "linking": getattr(request, "saml_link_user", None) is not None,
        },
        status=status,
    )


class SAMLLoginView(SAMLOnly, saml_views.LoginView):
    """``/accounts/saml/login/``: redirects to the IdP with an AuthnRequest; off (404) unless
    SAML is configured."""

    #: where to go when the IdP's metadata cannot be had
    unreachable_url = "login"

    def get_sp_config(self, request: HttpRequest) -> SPConfig:
        return sp_config(request)

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            sp_config(request)
        except ProviderUnavailable:
            logger.exception("SAML sign-in cannot start")
            messages.error(
                request,
                _("%(provider)s cannot be reached right now; try again later.")
                % {"provider": settings.SAML_PROVIDER_NAME},
            )
            return redirect(self.unreachable_url)
        return super().get(request, *args, **kwargs)


class SAMLLinkView(LoginRequiredMixin, SAMLLoginView):
    """``POST /accounts/saml/link/``: the signed-in user links their account at the IdP (the
    only way for staff, whom a first sign-in never links by email). The sign-in's flow, with
    its request marked in the SAML session as linking this user: the response links instead
    of signing in."""

    http_method_names = ("post",)
    unreachable_url = "profile"

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not saml_configured():  # before asking an anonymous visitor to sign in
            raise Http404("SAML sign-in is not configured")
        return super().dispatch(request, *args, **kwargs)

    def should_prevent_auth(self, request: HttpRequest) -> bool:
        return False

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        session: Any = request.saml_session  # type: ignore[attr-defined]
        before = set(OutstandingQueriesCache(session).outstanding_queries())
        query = request.GET.copy()
        query["next"] = reverse("profile")  # where the response comes back to
        request.GET = query  # type: ignore[assignment]
        response = self.get(request, *args, **kwargs)
        started = set(OutstandingQueriesCache(session).outstanding_queries()) - before
        if started:
            links = dict(session.get("saml_link", {}))
            links.update({request_id: request.user.pk for request_id in started})
            session["saml_link"] = links
        return response


# The IdP's page posts here from another site, without this site's CSRF token: the response's
# signature and InResponseTo (a request this browser's SAML session made) stand in for it.
@method_decorator(csrf_exempt, name="dispatch")
class SAMLACSView(SAMLOnly, saml_views.AssertionConsumerServiceView):
    """``POST /accounts/saml/acs/``: where the IdP posts its response. Any refusal (the
    library's checks, or which account) is a 403 page that says sign-in failed; details go to
    the log."""

    def get_sp_config(self, request: HttpRequest) -> SPConfig:
        return sp_config(request)

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            sp_config(request)
        except ProviderUnavailable:
            logger.exception("SAML response not checked")
            return _failure(request, status=503)
        return super().post(request)

    def custom_validation(self, response: Any) -> None:
        # The response is verified and answers a request of this browser: was it a link?
        session = self.request.saml_session
        links = dict(session.get("saml_link", {}))
        user_pk = links.pop(response.session_id(), None)
        if user_pk is not None:
            session["saml_link"] = links
            self.request.saml_link_user = User.objects.get(pk=user_pk)

    def authenticate_user(self, request: HttpRequest, session_info: Any, *args: Any) -> Any:
        linking: User | None = getattr(request, "saml_link_user", None)
        if linking is None:
            return super().authenticate_user(request, session_info, *args)
        # Linking: the backend links the identity to the user who asked, who stays signed in
        # as they were (under HTTPS the site's own session cookie is not sent with this POST).
        user = authenticate(request=request, session_info=session_info)
        if user is None:
            raise PermissionDenied("the identity could not be linked")
        messages.success(
            request,
            _(
                'Your %(provider)s account is now linked: "Sign in with %(provider)s" signs you'
                " in to this account from now on."
            )
            % {"provider": settings.SAML_PROVIDER_NAME},
        )
        return user

    def handle_acs_failure(
        self,
        request: HttpRequest,
        exception: Exception | None = None,
        status: int = 403,
        **kwargs: Any,
    ) -> HttpResponse:
        logger.warning("SAML sign-in refused: %r", exception)
        return _failure(request, status=status)


class SAMLMetadataView(SAMLOnly, saml_views.MetadataView):
    """``/accounts/saml/metadata/``: this service provider's metadata for the IdP operator
    (entity id, assertion consumer service, certificate); needs no IdP metadata."""

    def get_sp_config(self, request: HttpRequest) -> SPConfig:
        return sp_metadata_config()

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return super().get(request, *args, **kwargs)
