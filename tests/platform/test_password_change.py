"""The profile page's password change, for accounts with a password and for those without."""

from __future__ import annotations

from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth.models import User


def test_it_links_the_password_change_from_the_profile(client, student):
    client.force_login(student)

    page = client.get("/accounts/profile/").content.decode()

    assert 'href="/accounts/password_change/"' in page
    assert "Change your password" in page


def test_it_changes_a_password_given_the_old_one(client, student):
    client.force_login(student)
    new = "a much longer passphrase"

    response = client.post(
        "/accounts/password_change/",
        {"old_password": "student", "new_password1": new, "new_password2": new},
        follow=True,
    )

    assert "Your password is changed" in response.content.decode()
    student.refresh_from_db()
    assert student.check_password(new)


def test_it_lets_an_account_without_a_password_set_one(client, db):
    user = User(username="sso", email="sso@uni.example")
    user.set_unusable_password()
    user.save()
    client.force_login(user)
    new = "a much longer passphrase"

    assert "Set a password" in client.get("/accounts/profile/").content.decode()
    client.post("/accounts/password_change/", {"new_password1": new, "new_password2": new})

    user.refresh_from_db()
    assert user.check_password(new)


def test_it_sends_anonymous_visitors_to_sign_in(client, db):
    response = client.get("/accounts/password_change/")

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


# --- wrong old passwords count as failed sign-ins (django-axes) --------------------------------

HALL = "10.1.2.3"
HOME = "192.0.2.7"


def change(client, old, *, ip=HALL):
    new = "a much longer passphrase"
    return client.post(
        "/accounts/password_change/",
        {"old_password": old, "new_password1": new, "new_password2": new},
        REMOTE_ADDR=ip,
    )


def test_it_locks_the_page_after_ten_wrong_old_passwords(client, student):
    client.force_login(student)

    statuses = [change(client, f"guess {n}").status_code for n in range(10)]
    # the tenth failure is answered with the lockout already, as at sign-in
    assert statuses == [200] * 9 + [429]

    response = change(client, "student")

    assert response.status_code == 429
    page = response.content.decode()
    assert "Too many failed sign-ins" in page
    assert "Try again in 15 minutes" in page
    assert response["Retry-After"] == "900"
    student.refresh_from_db()
    assert student.check_password("student")


def test_it_counts_toward_the_sign_in_lockout_of_the_account_from_that_address(
    client, student, other_student
):
    client.force_login(student)
    for n in range(settings_limit()):
        change(client, f"guess {n}")
    client.logout()

    locked = client.post(
        "/accounts/login/", {"username": "student", "password": "student"}, REMOTE_ADDR=HALL
    )
    assert locked.status_code == 429
    elsewhere = client.post(
        "/accounts/login/", {"username": "student", "password": "student"}, REMOTE_ADDR=HOME
    )
    assert elsewhere.status_code == 302
    client.logout()
    neighbour = client.post(
        "/accounts/login/", {"username": "other", "password": "other"}, REMOTE_ADDR=HALL
    )
    assert neighbour.status_code == 302


def test_nine_wrong_old_passwords_do_not_stop_the_right_one(client, student):
    client.force_login(student)
    for n in range(settings_limit() - 1):
        change(client, f"guess {n}")

    response = change(client, "student")

    assert response.status_code == 302
    student.refresh_from_db()
    assert student.check_password("a much longer passphrase")


def test_it_never_keeps_the_typed_passwords_with_the_failures(client, student):
    client.force_login(student)
    change(client, "my secret guess")

    [attempt] = AccessAttempt.objects.all()
    assert attempt.username == "student"
    assert "my secret guess" not in attempt.post_data
    assert "a much longer passphrase" not in attempt.post_data


def settings_limit() -> int:
    return int(settings.AXES_FAILURE_LIMIT)
