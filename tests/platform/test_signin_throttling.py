"""Sign-in throttling on /accounts/login/ and /admin/login/ (django-axes, database handler):
per account and address, with a page that says when to retry."""

from __future__ import annotations

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.conf import settings

HALL = "10.1.2.3"
HOME = "192.0.2.7"


def sign_in(client, username, password, *, ip=HALL, path="/accounts/login/"):
    return client.post(path, {"username": username, "password": password}, REMOTE_ADDR=ip)


def signed_in(client) -> bool:
    return "_auth_user_id" in client.session


def test_the_limits_are_settings():
    assert settings.AXES_FAILURE_LIMIT == 10
    assert timedelta(minutes=15) == settings.AXES_COOLOFF_TIME


def test_it_refuses_the_right_password_after_ten_wrong_ones(client, student):
    statuses = [sign_in(client, "student", "wrong").status_code for _ in range(10)]
    # the tenth failure is answered with the lockout already
    assert statuses == [200] * 9 + [429]

    response = sign_in(client, "student", "student")

    assert response.status_code == 429
    assert not signed_in(client)
    page = response.content.decode()
    assert "Too many failed sign-ins" in page
    assert "Try again in 15 minutes" in page
    assert response["Retry-After"] == "900"


def test_it_still_lets_the_rest_of_the_lecture_hall_sign_in(client, student, other_student):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        sign_in(client, "student", "wrong")

    sign_in(client, "other", "other")
    assert signed_in(client)
    client.logout()
    sign_in(client, "student", "student", ip=HOME)  # the same account from elsewhere
    assert signed_in(client)


def test_it_lets_the_account_in_again_after_the_cool_off(client, student):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        sign_in(client, "student", "wrong")
    AccessAttempt.objects.update(
        attempt_time=AccessAttempt.objects.get().attempt_time - timedelta(minutes=16)
    )

    sign_in(client, "student", "student")

    assert signed_in(client)


def test_nine_failures_do_not_lock_anyone_out(client, student):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        sign_in(client, "student", "wrong")

    sign_in(client, "student", "student")

    assert signed_in(client)


@pytest.mark.parametrize("path", ["/admin/login/"])
def test_it_throttles_the_admin_sign_in_too(client, staff, path):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        sign_in(client, "staff", "wrong", path=path)

    response = sign_in(client, "staff", "staff", path=path)

    assert response.status_code == 429
    assert not signed_in(client)
