"""``/accounts/password_reset/``: every account with an email, roster accounts included; the
page never says whether an address is registered."""

from __future__ import annotations

import re

from django.contrib.auth.models import User
from django.core import mail

from courses.roster import roster_import


def test_it_sends_a_link_to_an_account_with_an_unusable_password(client, semester):
    roster_import(semester, "username,email\nada,Ada@Uni.example\n")

    response = client.post("/accounts/password_reset/", {"email": "ada@uni.EXAMPLE"}, follow=True)

    assert "Check your email" in response.content.decode()
    [message] = mail.outbox
    assert message.to == ["Ada@Uni.example"]
    assert re.search(r"http://testserver/accounts/reset/\S+/\S+/", str(message.body))


def test_it_answers_an_unknown_or_inactive_address_with_the_same_page(client, semester):
    User.objects.create(username="old", email="old@uni.example", is_active=False)
    known = client.post("/accounts/password_reset/", {"email": "old@uni.example"}, follow=True)
    unknown = client.post("/accounts/password_reset/", {"email": "no@uni.example"}, follow=True)

    done = [("/accounts/password_reset/done/", 302)]
    assert known.redirect_chain == unknown.redirect_chain == done
    assert known.content == unknown.content
    assert mail.outbox == []


def test_it_links_forgot_your_password_from_the_sign_in_page(client, db):
    page = client.get("/accounts/login/").content.decode()

    assert 'href="/accounts/password_reset/"' in page


def test_it_writes_links_for_the_site_url_not_the_request_host(client, settings, semester):
    settings.SITE_URL = "https://leaderboard.uni.example"
    settings.ALLOWED_HOSTS = ["evil.example", "testserver"]
    roster_import(semester, "username,email\nada,ada@uni.example\n")

    client.post("/accounts/password_reset/", {"email": "ada@uni.example"}, HTTP_HOST="evil.example")

    [message] = mail.outbox
    assert "https://leaderboard.uni.example/accounts/reset/" in str(message.body)
    assert "evil.example" not in str(message.body)
