"""The profile page's password change, for accounts with a password and for those without."""

from __future__ import annotations

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
