"""External identities in the admin: listed, searched and filtered by issuer; never typed in
or edited; deleting one unlinks it."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import ExternalIdentity

TUM = "https://login.tum.example"
LMU = "https://login.lmu.example"


def link(username: str, issuer: str = TUM) -> ExternalIdentity:
    user = User.objects.create(username=username, email=f"{username}@uni.example")
    return ExternalIdentity.objects.create(
        user=user, issuer=issuer, subject=f"{username}-sub", method=ExternalIdentity.Method.EMAIL
    )


def test_it_lists_identities_in_a_constant_number_of_queries(client, staff):
    client.force_login(staff)
    link("s0")
    with CaptureQueriesContext(connection) as one:
        assert client.get("/admin/accounts/externalidentity/").status_code == 200
    for n in range(1, 6):
        link(f"s{n}", LMU if n % 2 else TUM)
    with CaptureQueriesContext(connection) as six:
        page = client.get("/admin/accounts/externalidentity/").content.decode()

    assert "s5@uni.example" in page
    assert "s5-sub" in page
    # session, user, two counts (filtered, total), the page of identities with their users
    # joined, the date hierarchy's range and its days, the issuer filter's choices.
    assert len(one) == len(six) == 8


def test_it_finds_an_identity_by_email_username_or_subject(client, staff):
    client.force_login(staff)
    link("ada")
    link("grace")

    for term in ["ada@uni.example", "ada", "ada-sub"]:
        page = client.get("/admin/accounts/externalidentity/", {"q": term}).content.decode()
        assert "ada-sub" in page
        assert "grace-sub" not in page


def test_it_filters_by_issuer(client, staff):
    client.force_login(staff)
    link("ada", TUM)
    link("grace", LMU)

    page = client.get("/admin/accounts/externalidentity/", {"issuer": LMU}).content.decode()

    assert "grace-sub" in page
    assert "ada-sub" not in page


def test_it_adds_or_changes_no_identity_by_hand(client, staff):
    client.force_login(staff)
    identity = link("ada")

    assert client.get("/admin/accounts/externalidentity/add/").status_code == 403
    url = f"/admin/accounts/externalidentity/{identity.pk}/change/"
    assert client.get(url).status_code == 200  # readable
    client.post(url, {"subject": "someone-else", "issuer": LMU})
    identity.refresh_from_db()
    assert (identity.issuer, identity.subject) == (TUM, "ada-sub")


def test_it_unlinks_by_deleting(client, staff):
    client.force_login(staff)
    identity = link("ada")

    client.post(f"/admin/accounts/externalidentity/{identity.pk}/delete/", {"post": "yes"})

    assert not ExternalIdentity.objects.exists()
    assert User.objects.filter(username="ada").exists()
