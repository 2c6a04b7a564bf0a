"""``/accounts/oidc/callback/`` and the OIDC backend: a callback changes something only for a
flow this session started, and the backend answers nowhere else."""

from __future__ import annotations

import socket
from urllib.parse import parse_qs, urlparse

import pytest


def signed_in(client) -> bool:
    return "_auth_user_id" in client.session


def test_it_answers_404_and_signs_nobody_out_when_oidc_is_not_configured(client, student, settings):
    settings.OIDC_ISSUER = ""
    client.force_login(student)

    response = client.get("/accounts/oidc/callback/?error=access_denied")

    assert response.status_code == 404
    assert signed_in(client)


@pytest.mark.parametrize("query", ["error=access_denied", "error=access_denied&state=forged"])
def test_it_signs_nobody_out_on_an_error_for_a_flow_this_session_did_not_start(
    client, student, oidc_on, query
):
    client.force_login(student)

    response = client.get(f"/accounts/oidc/callback/?{query}", follow=True)

    assert signed_in(client)
    assert "cancelled" not in response.content.decode()


def test_it_says_a_sign_in_this_session_started_was_cancelled(client, student, oidc_on):
    client.force_login(student)
    to_provider = client.get("/accounts/oidc/login/")
    [state] = parse_qs(urlparse(to_provider["Location"]).query)["state"]

    response = client.get(
        f"/accounts/oidc/callback/?error=access_denied&state={state}", follow=True
    )

    assert response.redirect_chain == [("/accounts/login/", 302)]
    assert "Sign-in with TUM Login was cancelled" in response.content.decode()
    assert state not in client.session["oidc_states"]
    # Cancelling at the provider leaves the session as it was.
    assert signed_in(client)


def test_it_says_cancelled_when_the_provider_leaves_the_state_out_of_its_error(client, db, oidc_on):
    client.get("/accounts/oidc/login/")

    response = client.get("/accounts/oidc/callback/?error=access_denied", follow=True)

    assert response.redirect_chain == [("/accounts/login/", 302)]
    assert "Sign-in with TUM Login was cancelled" in response.content.decode()


def test_it_ignores_a_code_sent_to_the_sign_in_page(client, student, settings):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Were the backend to run here, it would try to fetch this (closed) provider's endpoints.
    settings.OIDC_ISSUER = f"http://127.0.0.1:{port}"
    settings.OIDC_CLIENT_ID = "leaderboard"
    settings.OIDC_CLIENT_SECRET = "secret"

    response = client.post(
        "/accounts/login/?code=stolen&state=anything", {"username": "student", "password": "no"}
    )

    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()
    assert not signed_in(client)
