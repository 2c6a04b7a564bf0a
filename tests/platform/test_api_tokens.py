"""API tokens: only a digest is stored, and a token stops working when its user's password
changes, whichever way it changes (the password pages, the reset link, the admin, a shell);
Django re-hashing an unchanged password at sign-in is not a change."""

from __future__ import annotations

import hashlib
import re

from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import User
from django.core import mail
from django.test import Client

from submissions.models import ApiToken
from tests.platform.conftest import deliver_emails

NEW = "a much longer passphrase"


def api_status(token: str) -> int:
    return Client().get("/api/challenges/", HTTP_AUTHORIZATION=f"Token {token}").status_code


def assert_revoked(token: str) -> None:
    response = Client().get("/api/challenges/", HTTP_AUTHORIZATION=f"Token {token}")
    assert response.status_code == 401
    body = response.json()
    assert body["code"] == "token_revoked"
    assert "password changed" in body["error"]
    assert "http://testserver/accounts/profile/" in body["error"]


def test_it_stores_only_the_tokens_digest(token, student):
    row = ApiToken.objects.values().get(user=student)

    assert not any(token in str(value) for value in row.values())
    assert row["digest"] == hashlib.sha256(token.encode()).hexdigest()
    assert row["prefix"] == token[:8]
    assert api_status(token) == 200


def test_it_revokes_the_token_when_the_password_is_changed_on_its_page(client, student, token):
    client.force_login(student)

    client.post(
        "/accounts/password_change/",
        {"old_password": "student", "new_password1": NEW, "new_password2": NEW},
    )

    assert_revoked(token)


def test_it_revokes_the_token_when_the_password_is_reset(
    client, student, token, sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/accounts/password_reset/", {"email": student.email})
    deliver_emails(sent)  # the worker's part
    [message] = mail.outbox
    link = re.search(r"http://testserver(/accounts/reset/\S+/\S+/)", str(message.body))
    assert link

    form = client.get(link.group(1), follow=True)
    done = client.post(
        form.redirect_chain[-1][0], {"new_password1": NEW, "new_password2": NEW}, follow=True
    )

    assert done.redirect_chain[-1][0] == "/accounts/reset/done/"
    assert_revoked(token)


def test_it_revokes_the_token_when_staff_set_a_password_in_the_admin(client, staff, student, token):
    client.force_login(staff)

    response = client.post(
        f"/admin/auth/user/{student.pk}/password/",
        {"password1": NEW, "password2": NEW, "usable_password": "true"},
    )

    assert response.status_code == 302
    assert_revoked(token)


def test_it_revokes_the_token_when_a_password_is_set_in_a_shell(student, token):
    student.set_password(NEW)
    student.save(update_fields=["password"])

    assert_revoked(token)


def test_it_revokes_the_token_when_the_password_is_made_unusable(student, token):
    student.set_unusable_password()
    student.save(update_fields=["password"])

    assert_revoked(token)


def test_it_lets_a_new_token_work_after_a_password_change(student, token):
    student.set_password(NEW)
    student.save()

    assert api_status(ApiToken.issue(student)) == 200


def test_it_keeps_the_token_when_django_rehashes_the_password_at_sign_in(client, settings, db):
    # Set under a hasher that is no longer the preferred one, as after a Django upgrade: the
    # sign-in below saves the same password under a new hash.
    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.MD5PasswordHasher",
        "django.contrib.auth.hashers.ScryptPasswordHasher",
    ]
    user = User.objects.create(username="ada", password=make_password("ada", hasher="scrypt"))
    token = ApiToken.issue(user)

    client.post("/accounts/login/", {"username": "ada", "password": "ada"})

    assert User.objects.get(pk=user.pk).password.startswith("md5$")
    assert api_status(token) == 200
