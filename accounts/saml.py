"""University sign-in with SAML 2.0, on djangosaml2 (pysaml2, which checks signatures with
Debian's ``xmlsec1``).

The library runs the web single sign-on profile: an AuthnRequest sent to the IdP by redirect,
the IdP's response posted back to the assertion consumer service, checked there (signature
against the IdP's metadata, destination, audience, validity window, ``InResponseTo`` one of
this browser's outstanding requests). This module adds what a course needs around it, as
``accounts.oidc`` does for OpenID Connect:

- the service provider's configuration comes from settings (``SAML_*``) and the IdP's metadata
  (``SAML_IDP_METADATA_URL`` or ``SAML_IDP_METADATA_FILE``), fetched on first use and kept per
  process for ``SAML_METADATA_REFRESH_SECONDS``; with neither set, SAML is off (404, no button);
- the key pair is ``SAML_SP_KEY_FILE`` / ``SAML_SP_CERT_FILE``, or with DEBUG on a demo pair
  made once in ``VAR_DIR/saml/`` (settings refuse to start without a pair when DEBUG is off);
- a signed response or signed assertion is required; an unsigned, wrongly signed, expired,
  replayed (its request is no longer outstanding) or unsolicited one is refused with a page
  that says sign-in failed, the details going to the log only;
- the person is found by their identity at the IdP (``accounts.identities``): the IdP's entity
  id and the persistent NameID (else ``eduPersonPrincipalName``), linked at the first sign-in by
  the email attribute to a non-staff account, then by that link alone; staff link theirs from
  the profile page (``accounts.saml_views.SAMLLinkView``);
- the cookie that carries the request's state (djangosaml2's own session) is ``SameSite=None;
  Secure`` under HTTPS, since the IdP posts the response from another site, and ``Lax`` on plain
  HTTP, where browsers drop a ``SameSite=None`` cookie that is not ``Secure``
  (:class:`SamlSessionMiddleware`);
- the pages are djangosaml2's views, subclassed in ``accounts.saml_views`` and imported on
  their first request (:func:`saml_view`): importing pysaml2 loads its XML schemas, which no
  other page should wait for, so this module imports it only inside the functions that need it.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from djangosaml2 import middleware as saml_middleware

from accounts.identities import ProviderPerson, SignInRefused, identity_link, identity_user_find
from accounts.models import ExternalIdentity

if TYPE_CHECKING:
    from saml2.config import SPConfig

logger = logging.getLogger(__name__)

NAMEID_FORMAT_PERSISTENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
BINDING_HTTP_POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
BINDING_HTTP_REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
#: ``mail`` and its OID name one attribute; either setting accepts both
MAIL_NAMES = ("mail", "urn:oid:0.9.2342.19200300.100.1.3")
EPPN_NAMES = ("eduPersonPrincipalName", "urn:oid:1.3.6.1.4.1.5923.1.1.1.6")
#: seconds an assertion's times may be off this host's clock
CLOCK_SKEW_SECONDS = 60

#: seconds until a failed refresh of the IdP's metadata is tried again
STALE_RETRY_SECONDS = 60

#: the loaded configuration (IdP metadata included) per settings, and when it was loaded
_loaded: dict[tuple[Any, ...], tuple[float, SPConfig]] = {}


class ProviderUnavailable(Exception):
    """The IdP's metadata could not be fetched or names no IdP."""


def saml_configured() -> bool:
    return bool(settings.SAML_IDP_METADATA_URL or settings.SAML_IDP_METADATA_FILE)


def sp_key_pair() -> tuple[str, str]:
    """(key file, certificate file) of this service provider."""
    if settings.SAML_SP_KEY_FILE and settings.SAML_SP_CERT_FILE:
        return str(settings.SAML_SP_KEY_FILE), str(settings.SAML_SP_CERT_FILE)
    if not settings.DEBUG:
        raise ImproperlyConfigured("SAML sign-in needs SAML_SP_KEY_FILE and SAML_SP_CERT_FILE")
    return demo_key_pair(Path(settings.VAR_DIR) / "saml")


def demo_key_pair(folder: Path) -> tuple[str, str]:
    """A self-signed pair in ``folder``, made once (for DEBUG only: production names its own)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key_path, cert_path = folder / "sp-demo.key", folder / "sp-demo.crt"
    if key_path.is_file() and cert_path.is_file():
        return str(key_path), str(cert_path)
    folder.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "course leaderboard (demo SP)")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # Written aside and renamed, key first: two processes starting at once each end with a
    # matching pair (the last rename of each file wins, and a pair is only read once both exist).
    suffix = f".{os.getpid()}.tmp"
    for path, data, mode in (
        (key_path, key_pem, 0o600),
        (cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644),
    ):
        tmp = path.with_name(path.name + suffix)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        tmp.replace(path)
    return str(key_path), str(cert_path)


def _sp_settings() -> dict[str, Any]:
    """pysaml2's configuration of this service provider, without the IdP's metadata."""
    key_file, cert_file = sp_key_pair()
    site = settings.SITE_URL
    return {
        "entityid": site + reverse("saml2_metadata"),
        "xmlsec_binary": shutil.which("xmlsec1") or "/usr/bin/xmlsec1",
        "allow_unknown_attributes": True,
        "http_client_timeout": settings.SAML_TIMEOUT,
        "accepted_time_diff": CLOCK_SKEW_SECONDS,
        # Signatures count only with the IdP's keys from its metadata, never a key the message
        # brings along.
        "only_use_keys_in_metadata": True,
        "key_file": key_file,
        "cert_file": cert_file,
        # IdPs such as Shibboleth encrypt assertions for an SP whose metadata has a key.
        "encryption_keypairs": [{"key_file": key_file, "cert_file": cert_file}],
        "service": {
            "sp": {
                "name": "Course leaderboard",
                "endpoints": {
                    "assertion_consumer_service": [
                        (site + reverse("saml2_acs"), BINDING_HTTP_POST)
                    ],
                },
                "name_id_format": [NAMEID_FORMAT_PERSISTENT],
                "name_id_format_allow_create": True,
                # Only answers to this browser's own requests (IdP-initiated sign-in is off).
                "allow_unsolicited": False,
                "authn_requests_signed": False,
                # The response or the assertion (or both) must carry a valid signature.
                "want_response_signed": False,
                "want_assertions_signed": False,
                "want_assertions_or_response_signed": True,
            },
        },
    }


def sp_metadata_config() -> SPConfig:
    """The configuration without the IdP: what ``/accounts/saml/metadata/`` publishes."""
    from saml2.config import SPConfig

    config = SPConfig()
    config.load(_sp_settings())
    return config


def sp_config(request: HttpRequest | None = None) -> SPConfig:
    """The configuration with the IdP's metadata, loaded (fetched) once per process and
    refreshed after ``SAML_METADATA_REFRESH_SECONDS``. A refresh that fails keeps the copy
    this process has (tried again a minute later): an IdP's metadata server being down for a
    while stops no sign-in."""
    key = (
        settings.SITE_URL,
        settings.SAML_IDP_METADATA_URL,
        settings.SAML_IDP_METADATA_FILE,
        settings.SAML_SP_KEY_FILE,
        settings.SAML_SP_CERT_FILE,
    )
    known = _loaded.get(key)
    now = time.monotonic()
    if known is not None and now - known[0] < settings.SAML_METADATA_REFRESH_SECONDS:
        return known[1]
    try:
        config = _sp_config_load()
    except ProviderUnavailable:
        if known is None:
            raise
        logger.exception("SAML IdP metadata not refreshed: the copy loaded before stays in use")
        retry_at = now + STALE_RETRY_SECONDS
        _loaded[key] = (retry_at - settings.SAML_METADATA_REFRESH_SECONDS, known[1])
        return known[1]
    _loaded[key] = (now, config)
    return config


def _sp_config_load() -> SPConfig:
    from djangosaml2.utils import available_idps
    from saml2.config import SPConfig

    source = settings.SAML_IDP_METADATA_URL or settings.SAML_IDP_METADATA_FILE
    config_dict = _sp_settings()
    if settings.SAML_IDP_METADATA_URL:
        config_dict["metadata"] = {"remote": [{"url": settings.SAML_IDP_METADATA_URL}]}
    else:
        config_dict["metadata"] = {"local": [settings.SAML_IDP_METADATA_FILE]}
    config = SPConfig()
    try:
        config.load(config_dict)
        idps = available_idps(config)
    except Exception as exc:  # pysaml2 raises whatever the fetch or the parser raised
        raise ProviderUnavailable(f"IdP metadata {source}: {exc!r}") from exc
    if len(idps) != 1:
        raise ProviderUnavailable(f"IdP metadata {source} names {len(idps)} IdPs, not one")
    return config


def saml_idp() -> tuple[str, str]:
    """(entity id, single sign-on URL) of the configured IdP, from its metadata."""
    from djangosaml2.utils import available_idps

    config = sp_config()
    [entity_id] = available_idps(config)
    services = config.metadata.single_sign_on_service(entity_id, BINDING_HTTP_REDIRECT)
    return str(entity_id), str(services[0]["location"]) if services else ""


def saml_profile(user: User) -> dict[str, Any]:
    """What the profile page shows of SAML: the provider's name, ``user``'s link to the IdP if
    any, and the origin the "Link" form's redirect goes to (for the page's CSP
    ``form-action``, which browsers check the redirect against). The IdP's metadata is read
    from this process's copy, fetched at most once per refresh period."""
    if not saml_configured():
        return {"saml_provider_name": "", "saml_identity": None, "saml_form_action": []}
    try:
        entity_id, sso = saml_idp()
    except ProviderUnavailable:
        logger.exception("SAML IdP metadata unavailable for the profile page")
        entity_id, sso = "", ""
    identity = (
        ExternalIdentity.objects.filter(user=user, issuer=entity_id)
        .order_by("-last_used_at")
        .first()
        if entity_id
        else None
    )
    sso_url = urlparse(sso)
    return {
        "saml_provider_name": settings.SAML_PROVIDER_NAME,
        "saml_identity": identity,
        "saml_form_action": [f"{sso_url.scheme}://{sso_url.netloc}"] if sso_url.netloc else [],
    }


def _first(ava: dict[str, Any], names: tuple[str, ...]) -> str:
    for name in names:
        for value in ava.get(name) or ():
            if str(value).strip():
                return str(value).strip()
    return ""


def email_attribute_names() -> tuple[str, ...]:
    name = settings.SAML_EMAIL_ATTRIBUTE
    return MAIL_NAMES if name in MAIL_NAMES else (name,)


def saml_person(session_info: dict[str, Any]) -> ProviderPerson:
    """The person a verified response describes: the IdP's entity id and the persistent NameID
    (or, when the IdP sends another NameID format, ``eduPersonPrincipalName``)."""
    ava: dict[str, Any] = session_info.get("ava") or {}
    name_id = session_info.get("name_id")
    subject = ""
    if name_id is not None and getattr(name_id, "format", None) == NAMEID_FORMAT_PERSISTENT:
        subject = str(name_id.text or "").strip()
    if not subject:
        subject = _first(ava, EPPN_NAMES)
    return ProviderPerson(
        provider=settings.SAML_PROVIDER_NAME,
        issuer=str(session_info.get("issuer") or ""),
        subject=subject,
        email=_first(ava, email_attribute_names()),
        # The university's directory holds the address the IdP releases: it vouches for it.
        email_verified=True,
    )


class UniversitySAMLBackend(ModelBackend):
    """Signs in the account :func:`identity_user_find` picks for a verified response; answers
    only on the assertion consumer service (where djangosaml2 verified it) and only when SAML
    is configured. A refusal's reason is kept on the request for the failure page."""

    def authenticate(  # type: ignore[override]
        self,
        request: HttpRequest | None,
        session_info: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> User | None:
        if request is None or session_info is None or not saml_configured():
            return None
        if request.path != reverse("saml2_acs"):
            return None
        person = saml_person(session_info)
        try:
            linking: User | None = getattr(request, "saml_link_user", None)
            if linking is not None:
                identity_link(linking, person)
                return linking
            user = identity_user_find(person, create=settings.SAML_CREATE_USERS)
        except SignInRefused as exc:
            request.saml_refused = str(exc)  # type: ignore[attr-defined]
            return None
        if not self.user_can_authenticate(user):
            request.saml_refused = _(  # type: ignore[attr-defined]
                "The account here for %(email)s is disabled; ask the course staff."
            ) % {"email": person.email}
            return None
        return user


class SamlSessionMiddleware(saml_middleware.SamlSessionMiddleware):
    """djangosaml2's state cookie, ``SameSite=None; Secure`` on HTTPS (the IdP's POST comes
    from another site) and ``Lax`` on plain HTTP (a non-Secure ``None`` cookie is dropped by
    browsers; there IdP and site must share a site, as on 127.0.0.1)."""

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        response = super().process_response(request, response)
        morsel = response.cookies.get(self.cookie_name)
        if morsel is not None:
            secure = request.is_secure()
            morsel["samesite"] = "None" if secure else "Lax"
            morsel["secure"] = True if secure else ""
        return response


def saml_view(name: str) -> Callable[..., HttpResponseBase]:
    """``accounts.saml_views.<name>`` as a view that imports it on its first request: pysaml2
    loads its XML schemas when imported (seconds on a busy host), which no other page, and no
    site without SAML, should wait for. Off (404) unless SAML is configured."""

    def view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not saml_configured():
            raise Http404("SAML sign-in is not configured")
        return _view_class(name)(request, *args, **kwargs)

    # The IdP's page posts the response from another site, without this site's CSRF token.
    return csrf_exempt(view) if name == "SAMLACSView" else view


@cache
def _view_class(name: str) -> Callable[..., HttpResponseBase]:
    from accounts import saml_views

    return getattr(saml_views, name).as_view()
