"""Emails that a page asks for, sent by a worker instead of inside the request.

A request that talked to the mail server would take as long as the server does (a timing
oracle: an address with an account would answer slower than one without) and would fail when
it is down. Instead the page builds the message and, once its transaction commits, hands it to
the broker by task name (``worker.tasks.send_email``, which only workers import); a broker
that is down loses this one email, logged, and never turns the page into an error.
"""

from __future__ import annotations

import logging
from typing import TypedDict

from celery import current_app
from django.conf import settings
from django.db import transaction

logger = logging.getLogger(__name__)

#: the task's name, shared with ``worker.tasks.send_email``
SEND_EMAIL = "worker.tasks.send_email"


class Email(TypedDict):
    """One plain-text email, as the task receives it (JSON)."""

    subject: str
    body: str
    from_email: str | None
    to: list[str]


def email_send_later(email: Email) -> None:
    """Send ``email`` through a worker once the current transaction commits."""

    def send() -> None:
        try:
            # Housekeeping: served beside the gradings, never behind a backlog of them.
            current_app.send_task(SEND_EMAIL, args=[email], queue=settings.HOUSEKEEPING_QUEUE)
        except Exception:
            # Never the body: it may hold a one-time link.
            logger.exception("could not queue the email %r to %s", email["subject"], email["to"])

    transaction.on_commit(send)
