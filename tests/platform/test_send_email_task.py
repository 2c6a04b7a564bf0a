"""``worker.tasks.send_email``: sends the email a page built (``accounts.mail``), called
directly as a worker would run it; a mail server that refuses is tried again, then given up."""

from __future__ import annotations

import logging
import socket

import pytest
from django.core import mail

from accounts.mail import SEND_EMAIL
from worker.tasks import EMAIL_RETRIES, send_email

EMAIL = {
    "subject": "Set a new password for the course leaderboard",
    "body": "Hello ada,\n\nhttp://testserver/accounts/reset/x/y/\n",
    "from_email": "leaderboard@uni.example",
    "to": ["ada@uni.example"],
}


@pytest.fixture
def mail_server_down(settings):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Nothing listens on that port once the socket is closed.
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = port
    settings.EMAIL_TIMEOUT = 2
    return settings


def test_it_is_the_task_accounts_sends_by_name():
    assert send_email.name == SEND_EMAIL


def test_it_sends_the_email_it_is_given(db):
    send_email(EMAIL)

    [message] = mail.outbox
    assert (message.subject, message.body, message.from_email, message.to) == (
        EMAIL["subject"],
        EMAIL["body"],
        EMAIL["from_email"],
        EMAIL["to"],
    )


def test_it_raises_for_a_retry_when_the_mail_server_refuses(db, mail_server_down):
    # Called directly, Celery's retry raises the error; a worker schedules the next try.
    with pytest.raises(ConnectionRefusedError):
        send_email(EMAIL)


def test_it_gives_up_after_the_last_try_and_says_so(db, mail_server_down, caplog):
    send_email.push_request(retries=EMAIL_RETRIES)
    try:
        with caplog.at_level(logging.ERROR, logger="worker.tasks"):
            send_email(EMAIL)
    finally:
        send_email.pop_request()

    assert "lost" in caplog.text
    assert "ada@uni.example" in caplog.text
    assert "/accounts/reset/" not in caplog.text
