"""The profile page: the API token, shown once when it is made, never cached."""

from __future__ import annotations

import re

from submissions.models import ApiToken


def api_status(client, token: str) -> int:
    return client.get("/api/challenges/", HTTP_AUTHORIZATION=f"Token {token}").status_code


def words(page: str) -> str:
    # The template wraps its sentences over several lines.
    return " ".join(page.split())


def shown_token(page: str) -> str:
    match = re.search(r'<code class="token" id="api-token">([^<]+)</code>', page)
    assert match, "no token on the page"
    return match.group(1)


def test_it_does_not_show_the_token_on_a_visit(client, student, token):
    client.force_login(student)

    page = client.get("/accounts/profile/").content.decode()

    assert token not in page
    assert f"<code>{token[:8]}…</code>" in page
    assert "not used yet" in page


def test_it_says_when_the_token_was_last_used(client, student, token):
    client.force_login(student)
    client.get("/api/challenges/", HTTP_AUTHORIZATION=f"Token {token}")

    page = words(client.get("/accounts/profile/").content.decode())

    assert "last used" in page


def test_it_forbids_storing_any_profile_answer(client, student, token):
    client.force_login(student)

    visit = client.get("/accounts/profile/")
    made = client.post("/accounts/profile/token/")

    assert "no-store" in visit["Cache-Control"]
    assert "no-store" in made["Cache-Control"]


def test_it_makes_no_token_on_a_visit(client, student):
    client.force_login(student)

    page = client.get("/accounts/profile/").content.decode()

    assert not ApiToken.objects.filter(user=student).exists()
    assert "You have no token yet" in page
    assert "Make a token" in page


def test_it_shows_a_new_token_once(client, student, token):
    client.force_login(student)

    response = client.post("/accounts/profile/token/")

    assert response.status_code == 200
    new = shown_token(response.content.decode())
    assert new != token
    assert api_status(client, new) == 200
    assert api_status(client, token) == 401
    assert new not in client.get("/accounts/profile/").content.decode()


def test_it_tells_the_student_the_token_stopped_working_after_a_password_change(
    client, student, token
):
    client.force_login(student)
    new = "a much longer passphrase"
    client.post(
        "/accounts/password_change/",
        {"old_password": "student", "new_password1": new, "new_password2": new},
    )

    page = words(client.get("/accounts/profile/").content.decode())

    assert "stopped working because your password was changed" in page
    assert "Make a token" in page
    made = shown_token(client.post("/accounts/profile/token/").content.decode())
    assert api_status(client, made) == 200


def test_it_regenerates_only_on_post(client, student, token):
    client.force_login(student)

    assert client.get("/accounts/profile/token/").status_code == 405


def test_it_sends_anonymous_visitors_to_sign_in(client, db):
    assert client.get("/accounts/profile/").status_code == 302
