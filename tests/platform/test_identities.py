"""``accounts.identities``: a provider's person signs in by their linked (issuer, subject),
linked once by a verified, normalised email to a non-staff account, or by the signed-in owner."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from accounts.identities import (
    ProviderPerson,
    SignInRefused,
    email_normalise,
    identity_link,
    identity_user_find,
)
from accounts.models import ExternalIdentity

ISSUER = "https://login.uni.example"


def person(subject: str, email: str, *, verified: bool = True, issuer: str = ISSUER):
    return ProviderPerson(
        provider="TUM Login", issuer=issuer, subject=subject, email=email, email_verified=verified
    )


@pytest.fixture
def ada(db) -> User:
    return User.objects.create(username="ada", email="ada@uni.example")


def test_it_links_the_first_sign_in_by_the_verified_email(ada):
    assert identity_user_find(person("ada-sub", "Ada@Uni.example"), create=False) == ada

    identity = ExternalIdentity.objects.get()
    assert (identity.user, identity.issuer, identity.subject) == (ada, ISSUER, "ada-sub")
    assert identity.method == ExternalIdentity.Method.EMAIL


def test_it_follows_the_link_whatever_email_the_provider_sends_later(ada):
    identity_user_find(person("ada-sub", "ada@uni.example"), create=False)
    before = ExternalIdentity.objects.get().last_used_at

    # An address changed at the provider, not yet verified there: the link decides.
    later = person("ada-sub", "ada.lovelace@new.example", verified=False)

    assert identity_user_find(later, create=True) == ada
    assert User.objects.count() == 1
    assert ExternalIdentity.objects.get().last_used_at > before


def test_it_refuses_a_recycled_email_with_another_subject(ada):
    identity_user_find(person("ada-sub", "ada@uni.example"), create=False)

    with pytest.raises(SignInRefused, match="linked to another TUM Login account"):
        identity_user_find(person("new-holder-sub", "ada@uni.example"), create=True)
    assert ExternalIdentity.objects.count() == 1
    assert User.objects.count() == 1


@pytest.mark.parametrize("rights", [{"is_staff": True}, {"is_superuser": True}])
def test_it_never_links_a_staff_account_by_email(db, rights):
    User.objects.create(username="prof", email="prof@uni.example", **rights)

    with pytest.raises(SignInRefused, match='"Link my university account" on your profile page'):
        identity_user_find(person("prof-sub", "prof@uni.example"), create=True)
    assert not ExternalIdentity.objects.exists()


def test_it_signs_staff_in_by_a_link_they_made(db):
    prof = User.objects.create(username="prof", email="prof@uni.example", is_staff=True)
    identity_link(prof, person("prof-sub", "whatever@uni.example"))

    assert identity_user_find(person("prof-sub", "prof@uni.example"), create=False) == prof
    assert ExternalIdentity.objects.get().method == ExternalIdentity.Method.SIGNED_IN


def test_it_refuses_to_link_an_identity_another_account_has(ada):
    identity_user_find(person("ada-sub", "ada@uni.example"), create=False)
    other = User.objects.create(username="other", email="other@uni.example")

    with pytest.raises(SignInRefused, match="already linked to another account here"):
        identity_link(other, person("ada-sub", "ada@uni.example"))


def test_it_links_the_same_identity_to_its_owner_again_without_complaint(ada):
    first = identity_link(ada, person("ada-sub", "ada@uni.example"))

    assert identity_link(ada, person("ada-sub", "ada@uni.example")) == first


def test_it_keeps_identities_of_different_issuers_apart(ada):
    identity_user_find(person("same-sub", "ada@uni.example"), create=False)

    with pytest.raises(SignInRefused, match="No account here uses grace@"):
        identity_user_find(
            person("same-sub", "grace@uni.example", issuer="https://other.example"), create=False
        )


def test_it_does_not_match_a_dotless_i_to_an_i(db):
    # PostgreSQL's UPPER('ı') is 'I', so email__iexact matched these (CVE-2019-19844).
    User.objects.create(username="mike", email="mike@example.org")

    with pytest.raises(SignInRefused, match=r"No account here uses mıke@example\.org"):
        identity_user_find(person("attacker", "mıke@example.org"), create=False)
    assert not ExternalIdentity.objects.exists()


def test_it_matches_full_width_letters_to_their_plain_form(ada):
    assert identity_user_find(person("ada-sub", "ＡＤＡ@uni.example"), create=False) == ada


@pytest.mark.parametrize(
    ("given", "normalised"),
    [
        ("Ada@Uni.Example", "ada@uni.example"),
        ("STRASSE@uni.example", "strasse@uni.example"),
        ("straße@uni.example", "strasse@uni.example"),
        ("ＡＤＡ@uni.example", "ada@uni.example"),
        ("mıke@example.org", "mıke@example.org"),
        (" ada@uni.example ", "ada@uni.example"),
    ],
)
def test_it_normalises_with_nfkc_and_case_folding(given, normalised):
    assert email_normalise(given) == normalised
