"""University sign-in with OpenID Connect, on mozilla-django-oidc.

The library runs the authorization-code flow (state, nonce, PKCE); this module adds what a
course needs around it:

- endpoints come from the issuer's discovery document (``OIDC_ISSUER`` +
  ``/.well-known/openid-configuration``), fetched on first use and kept per process;
- the ID token is checked against the provider's single published key when it names none (no
  ``kid`` header is optional in JOSE, and some providers omit it), and its audience and issuer
  are checked, which the library leaves out;
- the returning user is matched to an existing account by the provider's *verified* email,
  case-insensitively (roster imports create these accounts), and a refusal is shown on the
  sign-in page, naming the email.

A second provider (SAML through Shibboleth, say) would be a second backend in
``AUTHENTICATION_BACKENDS`` with its own login and callback views under ``/accounts/``, its
button on the sign-in page, and the same ``oidc_user_match``-style rule for linking accounts.
"""

from __future__ import annotations

import secrets
from typing import Any

import jwt
import requests
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.models import User
from django.core.exceptions import SuspiciousOperation
from django.db import connection, transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views import View
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.utils import import_from_settings
from mozilla_django_oidc.views import (
    OIDCAuthenticationCallbackView,
    OIDCAuthenticationRequestView,
)

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


class SignInRefused(Exception):
    """The provider vouched for someone this site will not sign in; the message says why."""


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


def oidc_user_match(claims: dict[str, Any], *, create: bool) -> User:
    """The one account for the provider's verified email, or a new one when ``create``."""
    provider = settings.OIDC_PROVIDER_NAME
    email = str(claims.get("email") or "").strip()
    if not email:
        raise SignInRefused(f"{provider} did not share your email address; ask the course staff.")
    # Some providers send the claim as a string.
    if claims.get("email_verified") not in (True, "true", "True"):
        raise SignInRefused(
            f"{provider} has not verified your email address {email}: verify it there, or ask"
            " the course staff."
        )
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # Two first sign-ins at once must not create two accounts for one email
            # (SQLite already serialises writing transactions).
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [email.lower()])
        users = list(User.objects.filter(email__iexact=email)[:2])
        if len(users) > 1:
            raise SignInRefused(
                f"Several accounts here use {email}; ask the course staff to sort them out."
            )
        if users:
            return users[0]
        if not create:
            raise SignInRefused(
                f"No account here uses {email}. Ask the course staff to add you to the course"
                " roster."
            )
        return _user_create(email)


def _user_create(email: str) -> User:
    username = email.lower()[:150]
    if User.objects.filter(username=username).exists():
        username = f"{username[:140]}-{secrets.token_hex(4)}"
    user = User(username=username, email=email)
    user.set_unusable_password()
    user.save()
    return user


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
        if not oidc_configured():
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
        claims = self.get_userinfo(access_token, id_token, payload)
        try:
            return oidc_user_match(claims, create=settings.OIDC_CREATE_USERS)
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

    def get(self, request: HttpRequest) -> HttpResponse:
        if not oidc_configured():
            raise Http404("single sign-on is not configured")
        try:
            discovery()
        except ProviderUnavailable:
            messages.error(
                request,
                f"{settings.OIDC_PROVIDER_NAME} cannot be reached right now; try again later.",
            )
            return redirect("login")
        return super().get(request)


class OIDCCallbackView(OIDCAuthenticationCallbackView):
    """Where the provider sends the browser back; a refusal ends on the sign-in page."""

    get_settings = staticmethod(oidc_setting)

    def get(self, request: HttpRequest) -> HttpResponse:
        if request.GET.get("error"):
            messages.error(request, f"Sign-in with {settings.OIDC_PROVIDER_NAME} was cancelled.")
        return super().get(request)
