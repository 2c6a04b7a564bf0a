"""The profile page: the API token and regenerating it."""

from __future__ import annotations

from submissions.models import ApiToken


def test_it_shows_the_users_token(client, student, token):
    client.force_login(student)

    page = client.get("/accounts/profile/").content.decode()

    assert token in page


def test_it_creates_a_token_on_first_visit(client, student):
    client.force_login(student)

    client.get("/accounts/profile/")

    assert ApiToken.objects.filter(user=student).exists()


def test_it_regenerates_the_token(client, student, token):
    client.force_login(student)

    response = client.post("/accounts/profile/token/")

    assert response.status_code == 302
    new = ApiToken.objects.get(user=student).key
    assert new != token
    assert client.get("/api/challenges/", HTTP_AUTHORIZATION=f"Token {token}").status_code == 401


def test_it_regenerates_only_on_post(client, student, token):
    client.force_login(student)

    assert client.get("/accounts/profile/token/").status_code == 405


def test_it_sends_anonymous_visitors_to_sign_in(client, db):
    assert client.get("/accounts/profile/").status_code == 302
