"""How often "Forgot your password?" sends a link: per client address and per email.

Within any ``PASSWORD_RESET_WINDOW_MINUTES``, at most ``PASSWORD_RESET_EMAIL_LIMIT`` requests
for one email (a mailbox is not flooded, whoever asks) and at most
``PASSWORD_RESET_ADDRESS_LIMIT`` from one address (nobody walks a list of addresses; high
enough for a lecture hall behind one NAT). A refused request is not recorded, so a flood does
not keep an address out for longer than the window, and the table holds at most the window's
admitted requests.

Known and unknown emails count alike, and the caller answers a refused request exactly as an
admitted one: the page reveals neither whether an account uses the address nor whether the
request was throttled.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.crypto import salted_hmac

from accounts.identities import email_normalise
from accounts.locks import transaction_lock
from accounts.models import PasswordResetRequest


def reset_request_admit(address: str, email: str) -> bool:
    """Record a request from ``address`` for ``email`` and say True, or say False (and record
    nothing) when either has reached its limit in the window."""
    now = timezone.now()
    since = now - timedelta(minutes=settings.PASSWORD_RESET_WINDOW_MINUTES)
    address_key = _key("address", address)
    email_key = _key("email", email_normalise(email))
    with transaction.atomic():
        # Count and insert as one step: parallel requests must not all see room for one more.
        # Always address before email, so two requests never wait for each other in a circle.
        transaction_lock(f"reset {address_key}")
        transaction_lock(f"reset {email_key}")
        PasswordResetRequest.objects.filter(requested_at__lt=since).delete()
        recent = PasswordResetRequest.objects.filter(requested_at__gte=since)
        if recent.filter(address_key=address_key).count() >= settings.PASSWORD_RESET_ADDRESS_LIMIT:
            return False
        if recent.filter(email_key=email_key).count() >= settings.PASSWORD_RESET_EMAIL_LIMIT:
            return False
        PasswordResetRequest.objects.create(
            address_key=address_key, email_key=email_key, requested_at=now
        )
    return True


def _key(kind: str, value: str) -> str:
    # Keyed with SECRET_KEY: the table counts requests without keeping who asked for what.
    return salted_hmac("accounts.throttle", f"{kind}:{value}", algorithm="sha256").hexdigest()
