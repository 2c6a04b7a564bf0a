"""A real SAML 2.0 identity provider for the tests: pysaml2's ``saml2.server.Server`` behind a
small WSGI app (wsgiref), run as its own process on 127.0.0.1::

    python -m tests.accounts.saml_idp --port PORT --url URL --keys DIR --sp-metadata-url URL

``DIR`` holds the IdP's key pair (``idp.key`` / ``idp.crt``, made with openssl at test time) and a
second pair (``other.key`` / ``other.crt``) that its metadata does not publish. Routes:

- ``GET /metadata``: the IdP's metadata (entity id, single sign-on by HTTP-Redirect, signing
  certificate);
- ``GET /sso?SAMLRequest=…``: checks the service provider's AuthnRequest (the SP's metadata is
  fetched from ``--sp-metadata-url`` for every request) and shows a form: who to assert (email,
  subject, NameID format) and how to answer;
- ``POST /respond``: builds the response, signed with xmlsec1 as the form says, and shows a form
  that posts it to the SP's assertion consumer service;
- ``GET /replay``: the last response's form again (a captured response, replayed).

Ways to answer (``mode``): ``both`` (response and assertion signed), ``assertion`` (only the
assertion), ``response`` (only the response), ``unsigned``, ``tampered`` (signed, then the email
changed to ``tamper_email``), ``other-key`` (signed with the unpublished key), ``expired``
(validity ended ten minutes ago), ``unsolicited`` (answers no request).
"""

from __future__ import annotations

import argparse
import base64
import html
import shutil
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, make_server

import saml2
from saml2.config import IdPConfig
from saml2.metadata import entity_descriptor
from saml2.saml import NAMEID_FORMAT_PERSISTENT, NAMEID_FORMAT_TRANSIENT, NameID
from saml2.server import Server

MODES = (
    "both",
    "assertion",
    "response",
    "unsigned",
    "tampered",
    "other-key",
    "expired",
    "unsolicited",
)
MAIL_OID = "urn:oid:0.9.2342.19200300.100.1.3"
EPPN_OID = "urn:oid:1.3.6.1.4.1.5923.1.1.1.6"


class IdP:
    def __init__(self, url: str, keys: Path, sp_metadata_url: str) -> None:
        self.url = url
        self.keys = keys
        self.sp_metadata_url = sp_metadata_url
        self.last_form = ""

    def config(
        self, *, key: str = "idp", with_sp: bool = True, lifetime_minutes: int = 15
    ) -> IdPConfig:
        settings: dict[str, Any] = {
            "entityid": f"{self.url}/metadata",
            "xmlsec_binary": shutil.which("xmlsec1"),
            "key_file": str(self.keys / f"{key}.key"),
            "cert_file": str(self.keys / f"{key}.crt"),
            "service": {
                "idp": {
                    "name": "Test university IdP",
                    "endpoints": {
                        "single_sign_on_service": [(f"{self.url}/sso", saml2.BINDING_HTTP_REDIRECT)]
                    },
                    "name_id_format": [NAMEID_FORMAT_PERSISTENT, NAMEID_FORMAT_TRANSIENT],
                    "policy": {
                        "default": {
                            "lifetime": {"minutes": lifetime_minutes},
                            "attribute_restrictions": None,
                            # Attributes by OID (urn:oid:…), as federations send them.
                            "name_form": saml2.saml.NAME_FORMAT_URI,
                        }
                    },
                }
            },
        }
        if with_sp:
            settings["metadata"] = {"remote": [{"url": self.sp_metadata_url}]}
        config = IdPConfig()
        config.load(settings)
        return config

    def metadata(self) -> str:
        return str(entity_descriptor(self.config(with_sp=False)))

    def sso(self, query: dict[str, str]) -> str:
        server = Server(config=self.config())
        request = server.parse_authn_request(query["SAMLRequest"], saml2.BINDING_HTTP_REDIRECT)
        message = request.message
        options = "".join(f'<option value="{mode}">{mode}</option>' for mode in MODES)
        return page(
            "Test university sign-in",
            f"""<p>Service provider: <code>{html.escape(message.issuer.text)}</code></p>
<form method="post" action="/respond">
  <input type="hidden" name="SAMLRequest" value="{html.escape(query["SAMLRequest"])}">
  <input type="hidden" name="RelayState" value="{html.escape(query.get("RelayState", ""))}">
  <label>Email <input name="email"></label>
  <label>Subject <input name="subject"></label>
  <label>NameID format <select name="nameid">
    <option value="persistent">persistent</option>
    <option value="transient">transient (subject as eduPersonPrincipalName)</option>
  </select></label>
  <label>Mode <select name="mode">{options}</select></label>
  <label>Tampered email <input name="tamper_email"></label>
  <button type="submit">Sign in</button>
</form>""",
        )

    def respond(self, form: dict[str, str]) -> str:
        mode = form.get("mode", "both")
        config = self.config(
            key="other" if mode == "other-key" else "idp",
            lifetime_minutes=-10 if mode == "expired" else 15,
        )
        server = Server(config=config)
        request = server.parse_authn_request(form["SAMLRequest"], saml2.BINDING_HTTP_REDIRECT)
        args = server.response_args(request.message, [saml2.BINDING_HTTP_POST])
        if mode == "unsolicited":
            args["in_response_to"] = None
        subject, email = form.get("subject", ""), form.get("email", "")
        identity = {"mail": [email]} if email else {}
        if form.get("nameid") == "transient":
            name_id = NameID(format=NAMEID_FORMAT_TRANSIENT, text=f"transient-{id(form)}")
            identity["eduPersonPrincipalName"] = [subject]
        else:
            name_id = NameID(
                format=NAMEID_FORMAT_PERSISTENT,
                text=subject,
                name_qualifier=config.entityid,
                sp_name_qualifier=args["sp_entity_id"],
            )
        args.pop("name_id_policy", None)
        args.pop("binding", None)
        sign_response = mode in (
            "both",
            "response",
            "tampered",
            "other-key",
            "expired",
            "unsolicited",
        )
        sign_assertion = mode in (
            "both",
            "assertion",
            "tampered",
            "other-key",
            "expired",
            "unsolicited",
        )
        response = str(
            server.create_authn_response(
                identity,
                name_id=name_id,
                authn={"class_ref": saml2.saml.AUTHN_PASSWORD_PROTECTED, "authn_auth": self.url},
                sign_response=sign_response,
                sign_assertion=sign_assertion,
                **args,
            )
        )
        if mode == "tampered":
            altered = response.replace(f">{email}<", f">{form['tamper_email']}<")
            assert altered != response, "the email is not in the response"
            response = altered
        encoded = base64.b64encode(response.encode()).decode()
        self.last_form = page(
            "Back to the course",
            f"""<form method="post" action="{html.escape(args["destination"])}">
  <input type="hidden" name="SAMLResponse" value="{encoded}">
  <input type="hidden" name="RelayState" value="{html.escape(form.get("RelayState", ""))}">
  <button type="submit">Continue</button>
</form>""",
        )
        return self.last_form

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        try:
            if path == "/metadata":
                return answer(start_response, "200 OK", self.metadata(), "text/xml")
            if path == "/sso" and method == "GET":
                return answer(start_response, "200 OK", self.sso(fields(environ["QUERY_STRING"])))
            if path == "/respond" and method == "POST":
                length = int(environ.get("CONTENT_LENGTH") or 0)
                body = environ["wsgi.input"].read(length).decode()
                return answer(start_response, "200 OK", self.respond(fields(body)))
            if path == "/replay" and self.last_form:
                return answer(start_response, "200 OK", self.last_form)
            return answer(start_response, "404 Not Found", page("Not found", ""))
        except Exception as exc:  # shown to the test, which fails on it
            print(f"IdP error: {exc!r}", file=sys.stderr, flush=True)
            return answer(
                start_response,
                "500 Internal Server Error",
                page("IdP error", html.escape(repr(exc))),
            )


def fields(query: str) -> dict[str, str]:
    return {key: values[-1] for key, values in parse_qs(query, keep_blank_values=True).items()}


def page(title: str, body: str) -> str:
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title></head>'
        f"<body><h1>{title}</h1>{body}</body></html>"
    )


def answer(
    start_response: Any, status: str, text: str, content_type: str = "text/html"
) -> list[bytes]:
    data = text.encode()
    start_response(
        status,
        [("Content-Type", f"{content_type}; charset=utf-8"), ("Content-Length", str(len(data)))],
    )
    return [data]


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        print(format % args, file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--url", required=True, help="the IdP's base URL as browsers see it")
    parser.add_argument("--keys", type=Path, required=True)
    parser.add_argument("--sp-metadata-url", required=True)
    options = parser.parse_args()
    app = IdP(options.url.rstrip("/"), options.keys, options.sp_metadata_url)
    with make_server("127.0.0.1", options.port, app, handler_class=QuietHandler) as server:
        server.serve_forever()


if __name__ == "__main__":
    main()
