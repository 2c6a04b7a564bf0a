"""``accounts.oidc.oidc_user_match``: which account a provider's claims sign in (the claims'
side; ``test_identities.py`` covers the linking rules)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from accounts.models import ExternalIdentity
from accounts.oidc import SignInRefused, oidc_user_match

ISSUER = "https://login.uni.example"


@pytest.fixture
def ada(db) -> User:
    user = User(username="ada", email="Ada.Lovelace@Uni.example")
    user.set_unusable_password()
    user.save()
    return user


def match(claims, *, create=False) -> User:
    return oidc_user_match(claims, issuer=ISSUER, create=create)


@pytest.mark.parametrize("verified", [True, "true"])
def test_it_matches_a_verified_email_whatever_its_letter_case(ada, verified):
    claims = {"sub": "x", "email": "ada.lovelace@UNI.EXAMPLE", "email_verified": verified}

    assert match(claims) == ada
    assert ExternalIdentity.objects.get(issuer=ISSUER, subject="x").user == ada


@pytest.mark.parametrize("verified", [False, "false", None])
def test_it_refuses_an_email_that_is_not_verified(ada, verified):
    claims = {"sub": "x", "email": ada.email, "email_verified": verified}

    with pytest.raises(SignInRefused, match="has not verified your email address"):
        match(claims, create=True)


def test_it_refuses_an_unknown_email_naming_it(db):
    with pytest.raises(SignInRefused, match=r"No account here uses grace@uni\.example\. Ask"):
        match({"sub": "g", "email": "grace@uni.example", "email_verified": True})
    assert not User.objects.exists()


def test_it_refuses_claims_without_an_email(db):
    with pytest.raises(SignInRefused, match="did not share your email address"):
        match({"sub": "x", "email_verified": True}, create=True)


def test_it_refuses_claims_without_a_subject(ada):
    with pytest.raises(SignInRefused, match="did not say who you are"):
        match({"email": ada.email, "email_verified": True})


def test_it_creates_one_linked_account_per_person_when_told_to(db):
    claims = {"sub": "g", "email": "Grace@Uni.example", "email_verified": True}

    first = match(claims, create=True)
    second = match({**claims, "email": "grace@uni.example"}, create=True)

    assert first == second
    assert User.objects.count() == 1
    assert not first.has_usable_password()
    assert ExternalIdentity.objects.get().method == ExternalIdentity.Method.CREATED


def test_it_refuses_an_email_that_several_accounts_share(ada):
    User.objects.create(username="ada2", email="ada.lovelace@uni.example")

    with pytest.raises(SignInRefused, match="Several accounts here use"):
        match({"sub": "x", "email": ada.email, "email_verified": True}, create=True)
