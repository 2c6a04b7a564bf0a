"""``/accounts/password_reset/``: every account with an email, roster accounts included; the
link is sent by a worker, at most a few times an hour per email and per address; the page never
says whether an address is registered, nor whether the request was throttled."""

from __future__ import annotations

import logging
import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.core import mail
from kombu.exceptions import OperationalError

from accounts.mail import SEND_EMAIL
from accounts.models import PasswordResetRequest
from courses.roster import roster_import
from tests.platform.conftest import deliver_emails

HALL = "10.1.2.3"
HOME = "192.0.2.7"
DONE = [("/accounts/password_reset/done/", 302)]


def page(response) -> bytes:
    """The page without its CSRF token (the header's language switch carries one), which is
    masked anew for every answer and so tells nothing apart."""
    return re.sub(rb'name="csrfmiddlewaretoken" value="[^"]+"', b"", response.content)


@pytest.fixture
def ask(client, django_capture_on_commit_callbacks):
    """Ask for a link as a browser at ``ip`` does, running what waits for the commit."""

    def post(email, *, ip=HALL, **extra):
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(
                "/accounts/password_reset/", {"email": email}, follow=True, REMOTE_ADDR=ip, **extra
            )

    return post


def test_it_sends_a_link_to_an_account_with_an_unusable_password(ask, semester, sent):
    roster_import(semester, "username,email\nada,Ada@Uni.example\n")

    response = ask("ada@uni.EXAMPLE")
    deliver_emails(sent)

    assert "Check your email" in response.content.decode()
    [message] = mail.outbox
    assert message.to == ["Ada@Uni.example"]
    assert message.subject == "Set a new password for the course leaderboard"
    assert re.search(r"http://testserver/accounts/reset/\S+/\S+/", str(message.body))


def test_it_sends_the_link_from_a_worker_not_inside_the_request(ask, semester, sent):
    roster_import(semester, "username,email\nada,ada@uni.example\n")

    ask("ada@uni.example")

    assert mail.outbox == []
    [message] = sent
    assert message.name == SEND_EMAIL
    assert message.args[0]["to"] == ["ada@uni.example"]
    assert "/accounts/reset/" in message.args[0]["body"]


def test_it_answers_an_unknown_or_inactive_address_with_the_same_page(ask, semester, sent):
    User.objects.create(username="old", email="old@uni.example", is_active=False)
    known = ask("old@uni.example")
    unknown = ask("no@uni.example")

    assert known.redirect_chain == unknown.redirect_chain == DONE
    assert page(known) == page(unknown)
    assert sent == []


def test_it_links_forgot_your_password_from_the_sign_in_page(client, db):
    page = client.get("/accounts/login/").content.decode()

    assert 'href="/accounts/password_reset/"' in page


def test_it_writes_links_for_the_site_url_not_the_request_host(ask, settings, semester, sent):
    settings.SITE_URL = "https://leaderboard.uni.example"
    settings.ALLOWED_HOSTS = ["evil.example", "testserver"]
    roster_import(semester, "username,email\nada,ada@uni.example\n")

    ask("ada@uni.example", HTTP_HOST="evil.example")
    deliver_emails(sent)

    [message] = mail.outbox
    assert "https://leaderboard.uni.example/accounts/reset/" in str(message.body)
    assert "evil.example" not in str(message.body)


def test_the_limits_are_settings(settings):
    assert settings.PASSWORD_RESET_EMAIL_LIMIT == 3
    assert settings.PASSWORD_RESET_ADDRESS_LIMIT == 20
    assert settings.PASSWORD_RESET_WINDOW_MINUTES == 60


def test_it_sends_one_email_at_most_three_links_an_hour(ask, semester, sent):
    roster_import(semester, "username,email\nada,ada@uni.example\n")

    # From twenty addresses, so that only the per-email limit applies.
    answers = [ask("ada@uni.example", ip=f"10.0.0.{n}") for n in range(20)]

    assert len(sent) == 3
    assert {answer.redirect_chain == DONE for answer in answers} == {True}
    assert len({page(answer) for answer in answers}) == 1


def test_it_answers_at_most_twenty_requests_from_one_address_an_hour(ask, semester, sent):
    roster_import(semester, "username,email\nada,ada@uni.example\n")
    for n in range(20):
        ask(f"nobody{n}@uni.example")

    ask("ada@uni.example")
    assert sent == []

    ask("ada@uni.example", ip=HOME)
    assert len(sent) == 1


def test_it_answers_a_throttled_request_exactly_like_any_other(ask, semester, sent):
    roster_import(semester, "username,email\nada,ada@uni.example\n")
    admitted = ask("ada@uni.example")
    for _ in range(5):
        ask("ada@uni.example")
    sent.clear()

    throttled = ask("ada@uni.example")
    unknown = ask("nobody@uni.example")

    assert sent == []
    assert admitted.redirect_chain == throttled.redirect_chain == unknown.redirect_chain == DONE
    assert page(admitted) == page(throttled) == page(unknown)


def test_it_counts_an_email_in_any_letter_case_as_one(ask, semester, sent):
    roster_import(semester, "username,email\nada,ada@uni.example\n")

    emails = ["ada@uni.example", "ADA@uni.example", "Ada@Uni.Example", "ａｄａ@uni.example"]
    for n, email in enumerate(emails):
        ask(email, ip=f"10.0.1.{n}")

    assert len(sent) == 3


def test_it_sends_again_once_the_hour_has_passed(ask, semester, sent):
    roster_import(semester, "username,email\nada,ada@uni.example\n")
    for _ in range(3):
        ask("ada@uni.example")
    PasswordResetRequest.objects.update(
        requested_at=PasswordResetRequest.objects.first().requested_at - timedelta(minutes=61)
    )
    sent.clear()

    ask("ada@uni.example")

    assert len(sent) == 1
    # The requests that left the window are gone.
    assert PasswordResetRequest.objects.count() == 1


def test_it_keeps_no_address_or_email_in_the_throttle(ask, semester):
    ask("ada@uni.example")

    row = PasswordResetRequest.objects.get()
    assert "ada" not in row.email_key
    assert HALL not in row.address_key


def test_it_shows_the_same_page_when_the_broker_is_down(ask, semester, monkeypatch, caplog):
    from config.celery import app

    roster_import(semester, "username,email\nada,ada@uni.example\n")

    def broker_down(*args, **kwargs):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(app, "send_task", broker_down)

    with caplog.at_level(logging.ERROR, logger="accounts.mail"):
        response = ask("ada@uni.example")

    assert response.redirect_chain == DONE
    assert "Check your email" in response.content.decode()
    assert "could not queue the email" in caplog.text
    assert "/accounts/reset/" not in caplog.text
