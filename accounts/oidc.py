"""University sign-in with OpenID Connect, on mozilla-django-oidc.

The library runs the authorization-code flow (state, nonce, PKCE); this module adds what a
course needs around it:

- endpoints come from the issuer's discovery document (``OIDC_ISSUER`` +
  ``/.well-known/openid-configuration``), fetched on first use and kept per process;
- the ID token is checked against the provider's single published key when it names none (no
  ``kid`` header is optional in JOSE, and some providers omit it), and its audience and issuer
  are checked, which the library leaves out;
- the person is found by their identity at the provider, the ID token's ``(iss, sub)``
  (``accounts.identities``): linked at the first sign-in by the *verified* email to a non-staff
  account, then by that link alone; staff link theirs from the profile page
  (:class:`OIDCLinkView`), and a refusal is shown on the sign-in page, saying what to do;
- the backend answers only on its own callback (the library would exchange a ``code`` sent to
  any page that authenticates, such as ``/accounts/login/?code=…``, skipping the state, nonce
  and PKCE checks the callback makes), and the callback only when OIDC is configured.

A second provider (SAML through Shibboleth, say) would be a second backend in
``AUTHENTICATION_BACKENDS`` with its own login and callback views under ``/accounts/``, its
button on the sign-in page, and the same ``accounts.identities`` calls for finding and linking
accounts.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlparse

import jwt
import requests
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.contrib.auth.models import User
from django.core.exceptions import SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views import View
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.utils import import_from_settings
from mozilla_django_oidc.views import (
    OIDCAuthenticationCallbackView,
    OIDCAuthenticationRequestView,
)

from accounts.identities import (
    ProviderPerson,
    SignInRefused,
    identity_link,
    identity_user_find,
)
from accounts.models import ExternalIdentity

#: discovery documents by issuer, fetched once per process
_discovered: dict[str, dict[str, Any]] = {}

#: the library's names for settings whose value comes from somewhere else here
_ENDPOINTS = {
    "OIDC_OP_AUTHORIZATION_ENDPOINT": "authorization_endpoint",
    "OIDC_OP_TOKEN_ENDPOINT": "token_endpoint",
    "OIDC_OP_USER_ENDPOINT": "userinfo_endpoint",
    "OIDC_OP_JWKS_ENDPOINT": "jwks_uri",
}
_RENAMED = {"OIDC_RP_CLIENT_ID": "OIDC_CLIENT_ID", "OIDC_RP_CLIENT_SECRET": "OIDC_CLIENT_SECRET"}


class ProviderUnavailable(Exception):
    """The discovery document could not be fetched or makes no sense."""


def oidc_configured() -> bool:
    return bool(settings.OIDC_ISSUER and settings.OIDC_CLIENT_ID)


def discovery() -> dict[str, Any]:
    issuer = settings.OIDC_ISSUER.rstrip("/")
    if issuer not in _discovered:
        url = f"{issuer}/.well-known/openid-configuration"
        try:
            response = requests.get(url, timeout=settings.OIDC_TIMEOUT)
            response.raise_for_status()
            document = response.json()
        except (requests.RequestException, ValueError) as exc:
            raise ProviderUnavailable(f"{url}: {exc}") from exc
        # OpenID Connect Discovery 1.0, section 4.3: the document must name the same issuer.
        if str(document.get("issuer", "")).rstrip("/") != issuer:
            raise ProviderUnavailable(f"{url} names issuer {document.get('issuer')!r}")
        missing = [key for key in _ENDPOINTS.values() if not document.get(key)]
        if missing:
            raise ProviderUnavailable(f"{url} lacks {', '.join(missing)}")
        _discovered[issuer] = document
    return _discovered[issuer]


def oidc_setting(attr: str, *default: Any) -> Any:
    """The library's settings, with endpoints from discovery and this project's names."""
    if attr in _ENDPOINTS:
        return discovery()[_ENDPOINTS[attr]]
    return import_from_settings(_RENAMED.get(attr, attr), *default)


def oidc_identity(user: User) -> ExternalIdentity | None:
    """``user``'s link to the configured provider, if any (read without a discovery fetch: the
    issuer a token names is the configured one, perhaps with a trailing slash)."""
    if not oidc_configured():
        return None
    issuer = settings.OIDC_ISSUER.rstrip("/")
    return (
        ExternalIdentity.objects.filter(user=user, issuer__in=[issuer, f"{issuer}/"])
        .order_by("-last_used_at")
        .first()
    )


def oidc_form_action() -> list[str]:
    """Where a form that starts the flow (``OIDCLinkView``) may end up, for the page's
    Content-Security-Policy ``form-action``: browsers check the redirect to the provider's
    authorization endpoint against it. Without a discovery fetch (a page must not wait for the
    provider): the issuer's origin, and the endpoint's once discovery has run in this process.
    """
    if not oidc_configured():
        return []
    urls = [settings.OIDC_ISSUER]
    known = _discovered.get(settings.OIDC_ISSUER.rstrip("/"))
    if known:
        urls.append(str(known["authorization_endpoint"]))
    origins = {f"{url.scheme}://{url.netloc}" for url in map(urlparse, urls)}
    return sorted(origins)


def oidc_person(claims: dict[str, Any], *, issuer: str) -> ProviderPerson:
    """The person the provider's claims describe (``sub`` from the verified ID token)."""
    return ProviderPerson(
        provider=settings.OIDC_PROVIDER_NAME,
        issuer=issuer,
        subject=str(claims.get("sub") or ""),
        email=str(claims.get("email") or "").strip(),
        # Some providers send the claim as a string.
        email_verified=claims.get("email_verified") in (True, "true", "True"),
    )


def oidc_user_match(claims: dict[str, Any], *, issuer: str, create: bool) -> User:
    """The account these claims sign in to (``accounts.identities.identity_user_find``)."""
    return identity_user_find(oidc_person(claims, issuer=issuer), create=create)


class UniversityOIDCBackend(OIDCAuthenticationBackend):
    """Signs in the account :func:`oidc_user_match` picks; settings are read when used, so a
    page view of a signed-in user never waits for the provider. The upper-case properties are
    the attributes the library's methods read."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # The library's __init__ reads every endpoint (a discovery fetch) whenever Django
        # instantiates a backend, which it does for every request of a signed-in user.
        self.UserModel = User

    get_settings = staticmethod(oidc_setting)

    @property
    def OIDC_OP_TOKEN_ENDPOINT(self) -> str:
        return str(oidc_setting("OIDC_OP_TOKEN_ENDPOINT"))

    @property
    def OIDC_OP_USER_ENDPOINT(self) -> str:
        return str(oidc_setting("OIDC_OP_USER_ENDPOINT"))

    @property
    def OIDC_OP_JWKS_ENDPOINT(self) -> str:
        return str(oidc_setting("OIDC_OP_JWKS_ENDPOINT"))

    @property
    def OIDC_RP_CLIENT_ID(self) -> str:
        return str(settings.OIDC_CLIENT_ID)

    @property
    def OIDC_RP_CLIENT_SECRET(self) -> str:
        return str(settings.OIDC_CLIENT_SECRET)

    @property
    def OIDC_RP_SIGN_ALGO(self) -> str:
        return str(settings.OIDC_RP_SIGN_ALGO)

    @property
    def OIDC_RP_IDP_SIGN_KEY(self) -> None:
        return None  # always the provider's published keys

    def authenticate(self, request: HttpRequest | None, **kwargs: Any) -> User | None:
        # Django asks every backend on every sign-in; this one answers only on its callback,
        # after the callback view checked the state and found the nonce and PKCE verifier.
        # Anywhere else (``/accounts/login/?code=…&state=…``) the library would exchange the
        # code without either.
        if not oidc_configured() or request is None:
            return None
        if request.path != reverse("oidc_authentication_callback"):
            return None
        return super().authenticate(request, **kwargs)

    def retrieve_matching_jwk(self, token: str) -> jwt.PyJWK:
        """The published key that signed ``token``: by ``kid`` when the token names one, else
        the only key there is (the library insists on a ``kid``, or ignores it entirely)."""
        response = requests.get(self.OIDC_OP_JWKS_ENDPOINT, timeout=settings.OIDC_TIMEOUT)
        response.raise_for_status()
        header = jwt.get_unverified_header(token)
        keys = [
            key
            for key in response.json().get("keys", [])
            if key.get("use", "sig") == "sig"
            and key.get("alg", header.get("alg")) == header.get("alg")
        ]
        if "kid" in header:
            keys = [key for key in keys if key.get("kid") == header["kid"]]
        elif len(keys) > 1:
            raise SuspiciousOperation(
                f"the ID token names no key (kid) and the provider publishes {len(keys)}"
            )
        if not keys:
            raise SuspiciousOperation("no key of the provider's JWKS matches the ID token")
        return jwt.PyJWK(keys[0])

    def _verify_jws(self, payload: str, key: Any) -> dict[str, Any]:
        """Signature, expiry, and this client as the audience and the discovered issuer as the
        issuer (the library checks neither)."""
        algorithm = jwt.get_unverified_header(payload).get("alg")
        if algorithm != self.OIDC_RP_SIGN_ALGO:
            raise SuspiciousOperation(
                f"the provider signed with {algorithm!r},"
                f" not OIDC_SIGN_ALGO {self.OIDC_RP_SIGN_ALGO!r}"
            )
        try:
            return dict(
                jwt.decode(
                    payload,
                    key,
                    algorithms=[algorithm],
                    audience=self.OIDC_RP_CLIENT_ID,
                    issuer=discovery()["issuer"],
                )
            )
        except jwt.InvalidTokenError as exc:
            raise SuspiciousOperation(f"ID token refused: {exc}") from exc

    def get_or_create_user(
        self, access_token: str, id_token: str, payload: dict[str, Any]
    ) -> User | None:
        # ``payload`` is the verified ID token: its ``iss`` and ``sub`` are the identity.
        # OpenID Connect Core 1.0, 5.3.2: the userinfo's ``sub`` must be the token's.
        claims = self.get_userinfo(access_token, id_token, payload)
        if str(claims.get("sub", "")) != str(payload.get("sub", "")):
            raise SuspiciousOperation("the userinfo names another subject than the ID token")
        claims = {**claims, "sub": payload.get("sub")}
        issuer = str(payload["iss"])
        linking: User | None = getattr(self.request, "oidc_link_user", None)
        try:
            if linking is not None:
                identity_link(linking, oidc_person(claims, issuer=issuer))
                provider = settings.OIDC_PROVIDER_NAME
                messages.success(
                    self.request,
                    _(
                        'Your %(provider)s account is now linked: "Sign in with %(provider)s"'
                        " signs you in to this account from now on."
                    )
                    % {"provider": provider},
                )
                return linking
            return oidc_user_match(claims, issuer=issuer, create=settings.OIDC_CREATE_USERS)
        except SignInRefused as exc:
            messages.error(self.request, str(exc))
            return None


class OIDCLoginView(OIDCAuthenticationRequestView):
    """``/accounts/oidc/login/``: off (404) unless OIDC is configured."""

    def __init__(self, **kwargs: Any) -> None:
        # The library reads the authorization endpoint here, before the view knows whether
        # OIDC is configured or the provider reachable.
        View.__init__(self, **kwargs)

    get_settings = staticmethod(oidc_setting)

    @property
    def OIDC_OP_AUTH_ENDPOINT(self) -> str:
        return str(oidc_setting("OIDC_OP_AUTHORIZATION_ENDPOINT"))

    @property
    def OIDC_RP_CLIENT_ID(self) -> str:
        return str(settings.OIDC_CLIENT_ID)

    #: where to go when the provider cannot be reached
    unreachable_url = "login"

    def get(self, request: HttpRequest) -> HttpResponse:
        if not oidc_configured():
            raise Http404("single sign-on is not configured")
        try:
            discovery()
        except ProviderUnavailable:
            messages.error(
                request,
                _("%(provider)s cannot be reached right now; try again later.")
                % {"provider": settings.OIDC_PROVIDER_NAME},
            )
            return redirect(self.unreachable_url)
        return super().get(request)


class OIDCLinkView(LoginRequiredMixin, OIDCLoginView):
    """``POST /accounts/oidc/link/``: the signed-in user links their account at the provider
    (the only way for staff, whom a first sign-in never links by email). The flow is the
    sign-in's, with its state marked in the session as linking this user; the callback links
    instead of signing in."""

    http_method_names = ("post",)
    unreachable_url = "profile"

    def post(self, request: HttpRequest) -> HttpResponse:
        response = self.get(request)
        if not isinstance(response, HttpResponseRedirect) or response.url.startswith("/"):
            return response  # the provider is unreachable: back to the profile page
        [state] = parse_qs(urlparse(response.url).query)["state"]
        request.session["oidc_states"][state]["link_user"] = request.user.pk
        request.session["oidc_login_next"] = reverse("profile")
        request.session.modified = True
        return response


class OIDCCallbackView(OIDCAuthenticationCallbackView):
    """Where the provider sends the browser back; a refusal ends on the sign-in page (on the
    profile page when linking). Only a callback whose ``state`` this session started counts:
    anything else changes nothing, and nobody is signed out by a link."""

    get_settings = staticmethod(oidc_setting)

    def get(self, request: HttpRequest) -> HttpResponse:
        if not oidc_configured():
            raise Http404("single sign-on is not configured")
        flow = self._flow(request)
        user = request.user
        if flow is not None and user.is_authenticated and flow.get("link_user") == user.pk:
            # Read by the backend's get_or_create_user.
            request.oidc_link_user = request.user  # type: ignore[attr-defined]
        if request.GET.get("error"):
            return self._cancelled(request, flow)
        return super().get(request)

    def _cancelled(self, request: HttpRequest, flow: dict[str, Any] | None) -> HttpResponse:
        """The provider says the person cancelled (or it refused). The library would sign the
        current user out here whatever the state, so a link to ``?error=x`` signed anyone
        out; cancelling changes nothing but the flow's own state."""
        if flow is not None:
            del request.session["oidc_states"][request.GET["state"]]
            request.session.modified = True
        elif "state" in request.GET or not request.session.get("oidc_states"):
            return self.login_failure()  # not a flow of this session: say nothing
        # Else a provider that leaves the state out of its error (RFC 6749, 4.1.2.1, asks for
        # it) answered a flow this session started.
        if flow and "link_user" in flow:
            cancelled = _("Linking your account with %(provider)s was cancelled.")
        else:
            cancelled = _("Sign-in with %(provider)s was cancelled.")
        messages.error(request, cancelled % {"provider": settings.OIDC_PROVIDER_NAME})
        return self.login_failure()

    @property
    def failure_url(self) -> str:
        if hasattr(self.request, "oidc_link_user"):
            return reverse("profile")
        return str(super().failure_url)

    @staticmethod
    def _flow(request: HttpRequest) -> dict[str, Any] | None:
        """What this session recorded when it started the flow named by ``state``, if it did."""
        states = request.session.get("oidc_states")
        flow = states.get(request.GET.get("state", "")) if isinstance(states, dict) else None
        return flow if isinstance(flow, dict) else None
