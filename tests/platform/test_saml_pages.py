"""``/accounts/saml/…`` without a browser: off entirely unless the IdP's metadata is configured,
the service provider's metadata for the IdP operator, the state cookie's SameSite per scheme,
the demo key pair, a refused response, an IdP that cannot be reached, and production's
refusal to start without a key pair. (Sign-in end to end, against a real IdP process, is in
``tests/accounts/test_saml_sign_in.py``.)"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import xml.etree.ElementTree as ET
from base64 import b64encode
from pathlib import Path
from typing import Any

import pytest

from accounts import saml
from tests.accounts.conftest import key_pair_make
from tests.accounts.saml_idp import IdP
from tests.platform.test_settings import ROOT, load_settings

MD = "{urn:oasis:names:tc:SAML:2.0:metadata}"
DS = "{http://www.w3.org/2000/09/xmldsig#}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("saml-keys")
    for name in ("idp", "sp"):
        key_pair_make(folder, name)
    return folder


@pytest.fixture
def saml_on(settings: Any, keys: Path, tmp_path: Path) -> Any:
    """SAML configured with the IdP's metadata in a file (made by the test IdP's code)."""
    metadata = tmp_path / "idp-metadata.xml"
    metadata.write_text(IdP("https://idp.uni.example", keys, "").metadata())
    settings.SAML_IDP_METADATA_URL = ""
    settings.SAML_IDP_METADATA_FILE = str(metadata)
    settings.SAML_PROVIDER_NAME = "Uni Login"
    settings.SAML_SP_KEY_FILE = str(keys / "sp.key")
    settings.SAML_SP_CERT_FILE = str(keys / "sp.crt")
    return settings


@pytest.mark.parametrize("path", ["metadata/", "login/", "acs/", "link/"])
def test_it_is_off_entirely_without_idp_metadata(client, db, settings, path):
    settings.SAML_IDP_METADATA_URL = settings.SAML_IDP_METADATA_FILE = ""

    assert client.get(f"/accounts/saml/{path}").status_code == 404
    assert client.post(f"/accounts/saml/{path}", {"SAMLResponse": "x"}).status_code == 404
    assert "Sign in with" not in client.get("/accounts/login/").content.decode()


def test_it_shows_the_button_when_configured(client, db, saml_on):
    page = client.get("/accounts/login/?next=/accounts/profile/").content.decode()

    assert "Sign in with Uni Login" in page
    assert 'href="/accounts/saml/login/?next=/accounts/profile/"' in page


def test_it_publishes_its_metadata_for_the_idp_operator(client, db, saml_on, keys):
    # Even with the IdP unreachable: the operator needs this before the IdP knows the site.
    saml_on.SAML_IDP_METADATA_FILE = ""
    saml_on.SAML_IDP_METADATA_URL = f"http://127.0.0.1:{free_port()}/metadata"

    response = client.get("/accounts/saml/metadata/")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/xml")
    root = ET.fromstring(response.content)
    assert root.get("entityID") == "http://testserver/accounts/saml/metadata/"
    sp = root.find(f"{MD}SPSSODescriptor")
    assert sp is not None
    [acs] = sp.findall(f"{MD}AssertionConsumerService")
    assert acs.get("Location") == "http://testserver/accounts/saml/acs/"
    assert acs.get("Binding") == "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
    assert sp.get("WantAssertionsSigned") == "false"  # the response's signature is enough
    formats = [element.text for element in sp.findall(f"{MD}NameIDFormat")]
    assert formats == ["urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"]
    pem = (keys / "sp.crt").read_text()
    body = "".join(line for line in pem.splitlines() if "CERTIFICATE" not in line)
    published = {"".join((c.text or "").split()) for c in root.iter(f"{DS}X509Certificate")}
    assert published == {body}


@pytest.mark.parametrize(("secure", "samesite"), [(False, "Lax"), (True, "None")])
def test_it_keeps_the_request_state_in_a_cookie_that_comes_back_from_the_idp(
    client, db, saml_on, secure, samesite
):
    response = client.get("/accounts/saml/login/", secure=secure)

    assert response.status_code == 302
    assert response.url.startswith("https://idp.uni.example/sso?SAMLRequest=")
    cookie = response.cookies["saml_session"]
    assert cookie["samesite"] == samesite
    assert bool(cookie["secure"]) is secure
    assert cookie["httponly"]


def test_it_makes_a_demo_key_pair_once_when_none_is_configured(client, db, saml_on, tmp_path):
    saml_on.DEBUG = True
    saml_on.VAR_DIR = tmp_path / "var"
    saml_on.SAML_SP_KEY_FILE = saml_on.SAML_SP_CERT_FILE = ""

    first = client.get("/accounts/saml/metadata/").content
    second = client.get("/accounts/saml/metadata/").content

    assert (tmp_path / "var/saml/sp-demo.key").stat().st_mode & 0o077 == 0
    assert b"X509Certificate" in first
    assert first == second


def test_it_refuses_a_response_it_cannot_verify_with_a_page_not_an_error(client, db, saml_on):
    client.get("/accounts/saml/login/")
    forged = b64encode(b"<samlp:Response xmlns:samlp='urn:oasis:names:tc:SAML:2.0:protocol'/>")

    response = client.post("/accounts/saml/acs/", {"SAMLResponse": forged.decode()})

    assert response.status_code == 403
    assert "Sign-in with Uni Login failed" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_it_says_so_when_the_idp_metadata_cannot_be_fetched(client, db, saml_on):
    saml_on.SAML_IDP_METADATA_FILE = ""
    saml_on.SAML_IDP_METADATA_URL = f"http://127.0.0.1:{free_port()}/metadata"

    response = client.get("/accounts/saml/login/", follow=True)

    assert response.redirect_chain == [("/accounts/login/", 302)]
    assert "Uni Login cannot be reached right now" in response.content.decode()
    assert client.post("/accounts/saml/acs/", {"SAMLResponse": "x"}).status_code == 503


@pytest.mark.parametrize("variable", ["SAML_IDP_METADATA_URL", "SAML_IDP_METADATA_FILE"])
def test_production_refuses_to_start_without_a_key_pair(tmp_path, variable):
    result = load_settings(
        VAR_DIR=str(tmp_path), DEBUG="false", SECRET_KEY="x" * 50, **{variable: "x"}
    )

    assert result.returncode != 0
    assert "SAML sign-in needs SAML_SP_KEY_FILE" in result.stderr


def test_production_starts_with_a_key_pair(tmp_path, keys):
    result = load_settings(
        VAR_DIR=str(tmp_path),
        DEBUG="false",
        SECRET_KEY="x" * 50,
        SAML_IDP_METADATA_URL="https://idp.uni.example/metadata",
        SAML_SP_KEY_FILE=str(keys / "sp.key"),
        SAML_SP_CERT_FILE=str(keys / "sp.crt"),
    )

    assert result.returncode == 0, result.stderr


def test_it_reads_the_email_from_mail_or_its_oid(settings):
    info = {"issuer": "https://idp", "name_id": None, "ava": {"eduPersonPrincipalName": ["a@x"]}}
    for name in saml.MAIL_NAMES:
        settings.SAML_EMAIL_ATTRIBUTE = name
        for attribute in saml.MAIL_NAMES:
            person = saml.saml_person(
                {**info, "ava": {**info["ava"], attribute: ["A@Uni.example"]}}
            )
            assert (person.subject, person.email) == ("a@x", "A@Uni.example")
    settings.SAML_EMAIL_ATTRIBUTE = "emailAddress"
    person = saml.saml_person({**info, "ava": {"mail": ["a@uni"], "emailAddress": ["b@uni"]}})
    assert person.email == "b@uni"


def test_it_keeps_the_idp_metadata_it_has_when_a_refresh_fails(client, db, saml_on, monkeypatch):
    monkeypatch.setattr(saml, "_loaded", {})
    assert client.get("/accounts/saml/login/").status_code == 302
    saml_on.SAML_METADATA_REFRESH_SECONDS = 0
    Path(saml_on.SAML_IDP_METADATA_FILE).unlink()

    response = client.get("/accounts/saml/login/")

    assert response.status_code == 302
    assert response.url.startswith("https://idp.uni.example/sso?SAMLRequest=")


def test_no_process_imports_pysaml2_before_a_saml_page_is_used(tmp_path):
    # pysaml2 loads its XML schemas on import: seconds at every web process's start otherwise.
    code = (
        "import sys, django; django.setup();"
        "from django.core.handlers.wsgi import WSGIHandler; WSGIHandler();"
        "import accounts.urls, accounts.saml;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'saml2'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "VAR_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "config.settings"},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
