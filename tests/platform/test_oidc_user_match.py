"""``accounts.oidc.oidc_user_match``: which account a provider's claims sign in."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from accounts.oidc import SignInRefused, oidc_user_match


@pytest.fixture
def ada(db) -> User:
    user = User(username="ada", email="Ada.Lovelace@Uni.example")
    user.set_unusable_password()
    user.save()
    return user


@pytest.mark.parametrize("verified", [True, "true"])
def test_it_matches_a_verified_email_whatever_its_letter_case(ada, verified):
    claims = {"sub": "x", "email": "ada.lovelace@UNI.EXAMPLE", "email_verified": verified}

    assert oidc_user_match(claims, create=False) == ada


@pytest.mark.parametrize("verified", [False, "false", None])
def test_it_refuses_an_email_that_is_not_verified(ada, verified):
    claims = {"email": ada.email, "email_verified": verified}

    with pytest.raises(SignInRefused, match="has not verified your email address"):
        oidc_user_match(claims, create=True)


def test_it_refuses_an_unknown_email_naming_it(db):
    with pytest.raises(SignInRefused, match=r"No account here uses grace@uni\.example\. Ask"):
        oidc_user_match({"email": "grace@uni.example", "email_verified": True}, create=False)
    assert not User.objects.exists()


def test_it_refuses_claims_without_an_email(db):
    with pytest.raises(SignInRefused, match="did not share your email address"):
        oidc_user_match({"sub": "x", "email_verified": True}, create=True)


def test_it_creates_one_account_per_email_when_told_to(db):
    claims = {"email": "Grace@Uni.example", "email_verified": True}

    first = oidc_user_match(claims, create=True)
    second = oidc_user_match({**claims, "email": "grace@uni.example"}, create=True)

    assert first == second
    assert User.objects.count() == 1
    assert not first.has_usable_password()


def test_it_refuses_an_email_that_several_accounts_share(ada):
    User.objects.create(username="ada2", email="ada.lovelace@uni.example")

    with pytest.raises(SignInRefused, match="Several accounts here use"):
        oidc_user_match({"email": ada.email, "email_verified": True}, create=True)
