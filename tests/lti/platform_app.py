"""A real LTI 1.3 platform for the tests: ``lti1p3platform`` behind FastAPI, run by uvicorn in
a process of its own (``python -m tests.lti.platform_app --port N``).

It does what an LMS does for a tool: serves its key set, starts the OIDC third-party login at
the tool's login URL (``/launch``, what a person's click on a link in the course does), answers
the tool's authorisation request with a signed id_token in an auto-submitting form (resource
link or deep linking launches, with the roles, email, subject and custom parameters a test
chose), accepts the deep-linking response, issues client-credentials tokens, and answers the
Names and Role Provisioning Service (paged with ``Link: <…>; rel="next"``) and the Assignment
and Grade Services (line items, scores). ``/_state`` tells a test what arrived.

A launch spec may ask for a broken id_token, to test the tool's refusals: ``expired``,
``sign_with_other_key`` (a key the platform's key set does not hold, under the platform's own
kid), ``issuer`` / ``client_id`` / ``deployment_id`` overrides.
"""

from __future__ import annotations

import argparse
import html
import json
import secrets
import threading
import time
from typing import Any
from urllib.parse import parse_qsl, urlencode

import jwt
import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from lti1p3platform.ltiplatform import LTI1P3PlatformConfAbstract
from lti1p3platform.message_launch import LTIAdvantageMessageLaunchAbstract
from lti1p3platform.registration import Registration

NRPS_SCOPE = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
AGS_SCOPES = [
    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly",
    "https://purl.imsglobal.org/spec/lti-ags/scope/score",
]
ROLE = "http://purl.imsglobal.org/vocab/lis/v2/membership#{}"
TA_ROLE = "http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant"


def _pem_pair() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


class State:
    """Everything the platform knows; one lock, as uvicorn may run handlers in threads."""

    def __init__(self, base: str) -> None:
        self.lock = threading.Lock()
        self.base = base
        self.private_key, self.public_key = _pem_pair()
        self.other_private_key, _ = _pem_pair()
        self.config: dict[str, Any] = {}
        self.hints: dict[str, dict[str, Any]] = {}
        self.members: dict[str, list[dict[str, Any]]] = {}
        self.page_size = 2
        self.line_items: dict[str, list[dict[str, Any]]] = {}
        self.scores: list[dict[str, Any]] = []
        self.deep_links: list[dict[str, Any]] = []
        self.fail_scores = 0
        self.failed_scores = 0
        self.token_requests = 0
        self.nrps_pages = 0


class Conf(LTI1P3PlatformConfAbstract):
    def init_platform_config(self, **kwargs: Any) -> None:
        self.state: State = kwargs["state"]

    def get_registration_by_params(self, **kwargs: Any) -> Registration:
        state, config = self.state, self.state.config
        return (
            Registration()
            .set_iss(state.base)
            .set_client_id(config["client_id"])
            .set_deployment_id(config["deployment_id"])
            .set_oidc_login_url(config["login_url"])
            .set_launch_url(config["launch_url"])
            .set_deeplink_launch_url(config["launch_url"])
            .set_platform_public_key(state.public_key)
            .set_platform_private_key(state.private_key)
            .set_tool_key_set_url(config["jwks_url"])
        )


class Launch(LTIAdvantageMessageLaunchAbstract):
    """A launch whose auto-submitting form this module renders itself."""

    def __init__(self, request: Any, conf: Conf, params: dict[str, Any]) -> None:
        super().__init__(request, conf)
        self.params = params
        self.spec: dict[str, Any] = {}

    def get_preflight_response(self) -> dict[str, Any]:
        return self.params

    def generate_launch_request(self) -> Any:
        spec = self.spec
        assert self._registration is not None
        launch = super().generate_launch_request()
        # A broken token, when the spec asks for one: decode what the library signed, change
        # it, sign it again (with the platform's key unless told otherwise).
        tweaks = {
            k: spec[k]
            for k in ("expired", "sign_with_other_key", "issuer", "client_id", "deployment_id")
            if spec.get(k)
        }
        if not tweaks:
            return launch
        claims = jwt.decode(launch["id_token"], options={"verify_signature": False})
        if spec.get("expired"):
            claims["iat"] = int(time.time()) - 3600
            claims["exp"] = int(time.time()) - 1800
        if spec.get("issuer"):
            claims["iss"] = spec["issuer"]
        if spec.get("client_id"):
            claims["aud"] = spec["client_id"]
            claims["azp"] = spec["client_id"]
        if spec.get("deployment_id"):
            claims["https://purl.imsglobal.org/spec/lti/claim/deployment_id"] = spec[
                "deployment_id"
            ]
        state: State = self._platform_config.state  # type: ignore[attr-defined]
        key = state.other_private_key if spec.get("sign_with_other_key") else state.private_key
        token = jwt.encode(
            claims, key, algorithm="RS256", headers={"kid": self._registration.get_kid()}
        )
        return {"state": launch["state"], "id_token": token}

    def render_launch_form(self, launch_data: dict[str, Any], **kwargs: Any) -> HTMLResponse:
        fields = "".join(
            f'<input type="hidden" name="{name}" value="{html.escape(str(launch_data[name]))}">'
            for name in ("id_token", "state")
        )
        page = (
            "<!doctype html><html><head><title>Launching</title></head><body>"
            f'<form id="launch" method="post" action="{html.escape(launch_data["launch_url"])}">'
            f'{fields}<button type="submit">Launch</button></form>'
            "<script>document.getElementById('launch').submit();</script></body></html>"
        )
        return HTMLResponse(page)


async def _form(request: Request) -> dict[str, str]:
    """A urlencoded form body (FastAPI's own form parsing needs python-multipart)."""
    return dict(parse_qsl((await request.body()).decode()))


def build_app(state: State) -> FastAPI:
    app = FastAPI()

    def conf() -> Conf:
        return Conf(state=state)

    def bearer_ok(request: Request, scopes: list[str]) -> bool:
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("bearer "):
            return False
        platform = conf()
        platform.get_registration()
        try:
            return platform.validate_token(header[7:], allowed_scopes=scopes)
        except Exception:
            return False

    @app.get("/jwks")
    def jwks() -> dict[str, Any]:
        return {"keys": [Registration.get_jwk(state.public_key)]}

    @app.post("/_configure")
    async def configure(request: Request) -> dict[str, Any]:
        body = await request.json()
        with state.lock:
            if body.get("reset"):
                # A test of its own: a fresh grade book, roster and inbox.
                state.hints.clear()
                state.members.clear()
                state.line_items.clear()
                state.scores.clear()
                state.deep_links.clear()
                state.fail_scores = state.failed_scores = 0
                state.page_size = 2
            state.config.update(body.get("config", {}))
            if "members" in body:
                state.members.update(body["members"])
            if "page_size" in body:
                state.page_size = int(body["page_size"])
            if "fail_scores" in body:
                state.fail_scores = int(body["fail_scores"])
        return {"issuer": state.base}

    @app.get("/_state")
    def read_state() -> dict[str, Any]:
        with state.lock:
            return {
                "line_items": state.line_items,
                "scores": state.scores,
                "deep_links": state.deep_links,
                "failed_scores": state.failed_scores,
                "token_requests": state.token_requests,
                "nrps_pages": state.nrps_pages,
            }

    @app.post("/_hint")
    async def hint(request: Request) -> dict[str, Any]:
        """A launch spec stored under a fresh hint; the test's browser then opens
        ``/launch?hint=…`` (or a test client starts the login itself)."""
        spec = await request.json()
        name = secrets.token_urlsafe(8)
        with state.lock:
            state.hints[name] = spec
        return {"hint": name, "login": _login_query(name, spec)}

    def _login_query(name: str, spec: dict[str, Any]) -> str:
        config = state.config
        return urlencode(
            {
                "iss": state.base,
                "login_hint": spec.get("sub", "someone"),
                "target_link_uri": config["launch_url"],
                "lti_message_hint": name,
                "client_id": config["client_id"],
                "lti_deployment_id": config["deployment_id"],
            }
        )

    @app.get("/launch")
    def start(hint: str) -> RedirectResponse:
        """A click on the tool's link in the course: third-party login initiation."""
        spec = state.hints[hint]
        url = f"{state.config['login_url']}?{_login_query(hint, spec)}"
        return RedirectResponse(url, status_code=302)

    @app.get("/frame")
    def frame(hint: str) -> HTMLResponse:
        """The course page showing the tool inside an iframe."""
        url = html.escape(f"{state.config['login_url']}?{_login_query(hint, state.hints[hint])}")
        return HTMLResponse(
            "<!doctype html><html><head><title>Course</title></head><body><h1>Course</h1>"
            f'<iframe id="tool" src="{url}" width="800" height="600"></iframe></body></html>'
        )

    @app.get("/auth")
    def auth(request: Request) -> Response:
        """The OIDC authorisation endpoint: the tool's redirect comes back here."""
        params = dict(request.query_params)
        spec = state.hints.get(params.get("lti_message_hint", ""))
        if spec is None:
            return JSONResponse({"error": "unknown lti_message_hint"}, status_code=400)
        platform = conf()
        launch = Launch(request, platform, params)
        launch.spec = spec
        roles = [TA_ROLE if r == "TeachingAssistant" else ROLE.format(r) for r in spec["roles"]]
        launch.set_user_data(
            spec["sub"], roles, full_name=spec.get("name"), email_address=spec.get("email")
        )
        context = spec.get("context", "course-1")
        launch.set_launch_context_claim(
            context,
            ["http://purl.imsglobal.org/vocab/lis/v2/course#CourseOffering"],
            context_title=spec.get("context_title", "Deep Learning"),
            context_label="DL",
        )
        if spec.get("custom"):
            launch.set_custom_parameters_claim(spec["custom"])
        launch.set_nrps(f"{state.base}/nrps/{context}")
        launch.set_ags(f"{state.base}/lineitems/{context}", allow_creating_lineitems=True)
        if spec.get("deep_linking"):
            launch.set_dl(
                f"{state.base}/deep_link_return",
                title="Add a challenge",
                accept_types={"ltiResourceLink"},
            )
        else:
            launch.set_resource_link_claim(spec.get("resource_link", "link-1"), title="Challenge")
        return launch.lti_launch()  # type: ignore[no-any-return]

    @app.post("/token")
    async def token(request: Request) -> Response:
        form = await _form(request)
        platform = conf()
        platform.get_registration()
        with state.lock:
            state.token_requests += 1
        try:
            answer = platform.get_access_token(form)  # type: ignore[arg-type]
        except Exception as exc:
            return JSONResponse({"error": "invalid_client", "detail": str(exc)}, 400)
        return JSONResponse(answer)

    @app.post("/deep_link_return")
    async def deep_link_return(request: Request) -> HTMLResponse:
        form = await _form(request)
        platform = conf()
        platform.get_registration()
        try:
            items = platform.validate_deeplinking_resp(form)  # type: ignore[arg-type]
        except Exception as exc:
            return HTMLResponse(f"<p>refused: {html.escape(str(exc))}</p>", status_code=400)
        with state.lock:
            state.deep_links.extend(items)
        return HTMLResponse("<!doctype html><title>Added</title><h1>Deep link received</h1>")

    @app.get("/nrps/{context}")
    def nrps(context: str, request: Request, page: int = 0) -> Response:
        if not bearer_ok(request, [NRPS_SCOPE]):
            return JSONResponse({"error": "unauthorised"}, 401)
        members = state.members.get(context, [])
        size = state.page_size
        chunk = members[page * size : (page + 1) * size]
        headers = {}
        if (page + 1) * size < len(members):
            headers["Link"] = f'<{state.base}/nrps/{context}?page={page + 1}>; rel="next"'
        with state.lock:
            state.nrps_pages += 1
        body = {"id": str(request.url), "context": {"id": context}, "members": chunk}
        return JSONResponse(
            body,
            headers=headers,
            media_type="application/vnd.ims.lti-nrps.v2.membershipcontainer+json",
        )

    @app.get("/lineitems/{context}")
    def line_items(context: str, request: Request) -> Response:
        if not bearer_ok(request, AGS_SCOPES):
            return JSONResponse({"error": "unauthorised"}, 401)
        return JSONResponse(
            state.line_items.get(context, []),
            media_type="application/vnd.ims.lis.v2.lineitemcontainer+json",
        )

    @app.post("/lineitems/{context}")
    async def line_item_create(context: str, request: Request) -> Response:
        if not bearer_ok(request, AGS_SCOPES):
            return JSONResponse({"error": "unauthorised"}, 401)
        body = json.loads(await request.body())
        with state.lock:
            items = state.line_items.setdefault(context, [])
            body["id"] = f"{state.base}/lineitems/{context}/{len(items) + 1}"
            items.append(body)
        return JSONResponse(body, media_type="application/vnd.ims.lis.v2.lineitem+json")

    @app.post("/lineitems/{context}/{number}/scores")
    async def score(context: str, number: int, request: Request) -> Response:
        if not bearer_ok(request, AGS_SCOPES):
            return JSONResponse({"error": "unauthorised"}, 401)
        body = json.loads(await request.body())
        with state.lock:
            if state.fail_scores > 0:
                state.fail_scores -= 1
                state.failed_scores += 1
                return JSONResponse({"error": "the grade book is down"}, 503)
            state.scores.append(
                {
                    "line_item": f"{state.base}/lineitems/{context}/{number}",
                    "content_type": request.headers.get("content-type", ""),
                    "score": body,
                }
            )
        return Response(status_code=204)

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    state = State(f"http://127.0.0.1:{args.port}")
    uvicorn.run(build_app(state), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
