"""Account flows end to end: Debian's chromium (Playwright) against pytest-django's live server,
email through Django's file-based backend (real files), and a real OpenID provider process
(``oidc-provider-mock``) on 127.0.0.1 and a free port."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlparse

import pytest
import requests
from django.contrib.auth.models import User

from tests.services import answering

PROVIDER_READY_SECONDS = 30


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.path)).is_relative_to(here):
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.slow)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Provider:
    """The OpenID provider process and the users it knows."""

    def __init__(self, url: str, proc: subprocess.Popen[str]) -> None:
        self.url = url
        self.proc = proc

    def user_set(self, sub: str, **claims: Any) -> None:
        response = requests.put(f"{self.url}/users/{quote(sub, safe='')}", json=claims, timeout=10)
        assert response.status_code == 204, response.text


@pytest.fixture(scope="session")
def oidc_provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (tmp_path_factory.mktemp("oidc") / "provider.log").open("w")
    proc = subprocess.Popen(
        # --require-nonce: the provider refuses a client that forgets the nonce.
        [
            sys.executable,
            "-m",
            "oidc_provider_mock",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--require-nonce",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    if not answering(f"{url}/.well-known/openid-configuration", proc, PROVIDER_READY_SECONDS):
        proc.kill()
        pytest.fail(f"the OpenID provider did not start: {Path(log.name).read_text()}")
    yield Provider(url, proc)
    proc.terminate()
    proc.wait(timeout=10)
    log.close()


@pytest.fixture(autouse=True)
def accounts_settings(settings: Any, tmp_path: Path, live_server: Any) -> Any:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.SITE_URL = live_server.url
    settings.EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    settings.EMAIL_FILE_PATH = tmp_path / "mail"
    settings.STATIC_ROOT = tmp_path / "static"
    settings.STATIC_ROOT.mkdir()
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    return settings


class Worker:
    """The messages pages send to the broker, kept here; ``run`` does what a worker would:
    the named task, called directly with the arguments as JSON brings them."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, list[Any]]] = []

    def send_task(self, name: str, args: Any = None, **options: Any) -> None:
        self.sent.append((name, json.loads(json.dumps(list(args or [])))))

    def run(self) -> None:
        from worker import tasks

        while self.sent:
            name, args = self.sent.pop(0)
            tasks.app.tasks[name](*args)


@pytest.fixture(autouse=True)
def worker(monkeypatch: pytest.MonkeyPatch) -> Worker:
    from config.celery import app

    worker = Worker()
    monkeypatch.setattr(app, "send_task", worker.send_task)
    return worker


@pytest.fixture
def oidc_settings(settings: Any, oidc_provider: Provider) -> Any:
    settings.OIDC_ISSUER = oidc_provider.url
    settings.OIDC_CLIENT_ID = "leaderboard"
    settings.OIDC_CLIENT_SECRET = "leaderboard-secret"
    settings.OIDC_PROVIDER_NAME = "TUM Login"
    settings.OIDC_CREATE_USERS = False
    return settings


@pytest.fixture(autouse=True)
def committed(transactional_db: None) -> None:
    """Every test here is transactional: another thread or process (the live server, a
    worker) must see the rows it makes, so ``db`` (the shared ``course``) is this one too."""


def mails(folder: Path) -> list[str]:
    """Every email the file-based backend wrote, oldest first."""
    if not folder.exists():
        return []
    files = sorted(folder.iterdir(), key=lambda path: path.stat().st_mtime_ns)
    return [
        message
        for path in files
        for message in path.read_text().split("-" * 79 + "\n")
        if message.strip()
    ]


def link_in(message: str, path_prefix: str) -> str:
    match = re.search(rf"https?://\S+{re.escape(path_prefix)}\S+", message)
    assert match, f"no {path_prefix} link in:\n{message}"
    return match.group(0)


def roster_user(username: str, email: str) -> User:
    user = User(username=username, email=email)
    user.set_unusable_password()
    user.save()
    return user


class SamlIdP:
    """The SAML IdP process (``tests.accounts.saml_idp``)."""

    def __init__(self, url: str, proc: subprocess.Popen[str], log: Path) -> None:
        self.url = url
        self.proc = proc
        self.log = log

    @property
    def metadata_url(self) -> str:
        return f"{self.url}/metadata"


def key_pair_make(folder: Path, name: str) -> None:
    """A throw-away self-signed pair ``name.key`` / ``name.crt`` (made by openssl)."""
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-sha256",
            "-days",
            "2",
            "-subj",
            f"/CN=test {name}",
            "-keyout",
            str(folder / f"{name}.key"),
            "-out",
            str(folder / f"{name}.crt"),
        ],
        check=True,
        capture_output=True,
    )


@pytest.fixture(scope="session")
def saml_idp(tmp_path_factory: pytest.TempPathFactory, live_server: Any) -> Iterator[SamlIdP]:
    keys = tmp_path_factory.mktemp("saml-idp")
    for name in ("idp", "other", "sp"):
        key_pair_make(keys, name)
    port = free_port()
    # Listening on 127.0.0.1, named as the live server names its host: one site for the
    # browser, as the demo's IdP and site share 127.0.0.1 (the SAML state cookie is Lax there).
    url = f"http://{urlparse(live_server.url).hostname}:{port}"
    log_path = keys / "idp.log"
    log = log_path.open("w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.accounts.saml_idp",
            "--port",
            str(port),
            "--url",
            url,
            "--keys",
            str(keys),
            "--sp-metadata-url",
            f"{live_server.url}/accounts/saml/metadata/",
        ],
        cwd=Path(__file__).parents[2],
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    if not answering(f"{url}/metadata", proc, PROVIDER_READY_SECONDS):
        proc.kill()
        pytest.fail(f"the SAML IdP did not start: {log_path.read_text()}")
    yield SamlIdP(url, proc, log_path)
    proc.terminate()
    proc.wait(timeout=10)
    log.close()


@pytest.fixture
def saml_settings(settings: Any, saml_idp: SamlIdP) -> Any:
    keys = Path(saml_idp.log).parent
    settings.SAML_IDP_METADATA_URL = saml_idp.metadata_url
    settings.SAML_IDP_METADATA_FILE = ""
    settings.SAML_PROVIDER_NAME = "Uni Login"
    settings.SAML_SP_KEY_FILE = str(keys / "sp.key")
    settings.SAML_SP_CERT_FILE = str(keys / "sp.crt")
    settings.SAML_EMAIL_ATTRIBUTE = "mail"
    settings.SAML_CREATE_USERS = False
    return settings
