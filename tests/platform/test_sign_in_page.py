"""The sign-in page and ``/accounts/oidc/login/`` with and without single sign-on configured."""

from __future__ import annotations

import socket


def test_it_shows_no_university_button_when_oidc_is_not_configured(client, db, settings):
    settings.OIDC_ISSUER = ""

    page = client.get("/accounts/login/").content.decode()

    assert "Sign in with" not in page
    assert client.get("/accounts/oidc/login/").status_code == 404


def test_it_shows_the_university_button_when_configured(client, db, settings):
    settings.OIDC_ISSUER = "https://login.uni.example"
    settings.OIDC_CLIENT_ID = "leaderboard"
    settings.OIDC_PROVIDER_NAME = "TUM Login"

    page = client.get("/accounts/login/?next=/accounts/profile/").content.decode()

    assert "Sign in with TUM Login" in page
    assert 'href="/accounts/oidc/login/?next=/accounts/profile/"' in page


def test_it_says_so_when_the_provider_cannot_be_reached(client, db, settings):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Nothing listens on that port once the socket is closed.
    settings.OIDC_ISSUER = f"http://127.0.0.1:{port}"
    settings.OIDC_CLIENT_ID = "leaderboard"
    settings.OIDC_PROVIDER_NAME = "TUM Login"

    response = client.get("/accounts/oidc/login/", follow=True)

    assert response.redirect_chain == [("/accounts/login/", 302)]
    assert "TUM Login cannot be reached right now" in response.content.decode()
