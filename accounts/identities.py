"""Which account an identity provider's person signs in to, for any protocol.

A provider names a person by ``(issuer, subject)`` (OpenID Connect's ``iss`` and ``sub``; an LTI
1.3 launch's the same; SAML's IdP entity id and persistent NameID). Email addresses are not
identities: they change, and universities hand a former student's address to someone new. So:

- a pair already linked (``ExternalIdentity``) signs in its account, whatever email the
  provider sends now;
- the first sign-in of a pair links it to the one account whose email equals the provider's
  *verified* email once normalised (:func:`email_normalise`), unless that account already has
  an identity at this issuer (the address was recycled: the new holder is someone else) or has
  staff rights (``is_staff`` or ``is_superuser``: never taken over through a mailbox);
- a signed-in owner links their own account from the profile page (:func:`identity_link`),
  which is the only way for staff.

Every refusal is a :class:`SignInRefused` whose message tells the person what to do.
"""

from __future__ import annotations

import secrets
import unicodedata
from dataclasses import dataclass

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.locks import transaction_lock
from accounts.models import ExternalIdentity


class SignInRefused(Exception):
    """The provider vouched for someone this site will not sign in; the message says why."""


@dataclass(frozen=True)
class ProviderPerson:
    """What a provider says about the person signing in."""

    #: the provider's display name, for messages ("TUM Login")
    provider: str
    issuer: str
    subject: str
    email: str = ""
    email_verified: bool = False


def email_normalise(email: str) -> str:
    """The form two addresses are compared in: Unicode NFKC, then case folding, then NFKC again.

    NFKC folds compatibility look-alikes (full-width letters, ligatures) to the plain letters;
    ``str.casefold`` is Unicode's caseless matching (ß and ss, final sigma) and, unlike a
    database's ``UPPER``, keeps the dotless ı apart from i, so ``mıke@`` never equals ``mike@``
    (CVE-2019-19844). The second NFKC makes the result stable (folding may produce characters
    that compose). Compared exactly, never with ``iexact``.
    """
    once = unicodedata.normalize("NFKC", email.strip()).casefold()
    return unicodedata.normalize("NFKC", once)


def users_by_email(email: str) -> list[User]:
    """The accounts whose email equals ``email`` once both are normalised.

    The database narrows the candidates (``iexact`` on the address as given and as
    normalised: every ASCII case variant) and Python keeps only exact matches of the normalised
    forms, so a database's looser case rules (PostgreSQL's ``UPPER`` maps ı to I) never decide.
    """
    wanted = email_normalise(email)
    candidates = User.objects.filter(Q(email__iexact=email.strip()) | Q(email__iexact=wanted))
    return [user for user in candidates if email_normalise(user.email) == wanted]


def identity_user_find(person: ProviderPerson, *, create: bool) -> User:
    """The account ``person`` signs in to, linking their identity at the first sign-in.

    With ``create``, a verified email that no account has gets a new account (without a
    usable password) linked to the identity.
    """
    if not person.subject:
        raise SignInRefused(
            f"{person.provider} did not say who you are (no subject); ask the course staff."
        )
    with transaction.atomic():
        # Two first sign-ins of one person at once: the second waits, then finds the link.
        transaction_lock(f"identity {person.issuer} {person.subject}")
        linked = _identity_use(person)
        if linked is not None:
            return linked
        email = person.email.strip()
        if not email:
            raise SignInRefused(
                f"{person.provider} did not share your email address; ask the course staff."
            )
        if not person.email_verified:
            raise SignInRefused(
                f"{person.provider} has not verified your email address {email}: verify it there,"
                " or ask the course staff."
            )
        # Two first sign-ins with one email at once must not create two accounts for it.
        transaction_lock(f"email {email_normalise(email)}")
        users = users_by_email(email)
        if len(users) > 1:
            raise SignInRefused(
                f"Several accounts here use {email}; ask the course staff to sort them out."
            )
        if not users:
            if not create:
                raise SignInRefused(
                    f"No account here uses {email}. Ask the course staff to add you to the course"
                    " roster."
                )
            user = _user_create(email)
            _identity_create(user, person, ExternalIdentity.Method.CREATED)
            return user
        user = users[0]
        if user.is_staff or user.is_superuser:
            raise SignInRefused(
                f"{email} belongs to a staff account, which {person.provider} never signs in by"
                " email alone. Sign in with your username and password, then choose"
                ' "Link my university account" on your profile page: from then on'
                f" {person.provider} signs you in."
            )
        if ExternalIdentity.objects.filter(user=user, issuer=person.issuer).exists():
            raise SignInRefused(
                f"The account here for {email} is linked to another {person.provider} account,"
                " not to the one you signed in with. Ask the course staff."
            )
        _identity_create(user, person, ExternalIdentity.Method.EMAIL)
        return user


def identity_link(user: User, person: ProviderPerson) -> ExternalIdentity:
    """Link ``person``'s identity to ``user``, who is signed in and asked for it (staff
    included: signing in with their password and at the provider in one go proves both)."""
    with transaction.atomic():
        identity = (
            ExternalIdentity.objects.select_related("user")
            .filter(issuer=person.issuer, subject=person.subject)
            .first()
        )
        if identity is not None and identity.user_id != user.pk:
            raise SignInRefused(
                f"This {person.provider} account is already linked to another account here;"
                " ask the course staff."
            )
        if identity is None:
            identity = _identity_create(user, person, ExternalIdentity.Method.SIGNED_IN)
        else:
            _identity_touch(identity)
        return identity


def _identity_use(person: ProviderPerson) -> User | None:
    identity = (
        ExternalIdentity.objects.select_related("user")
        .filter(issuer=person.issuer, subject=person.subject)
        .first()
    )
    if identity is None:
        return None
    _identity_touch(identity)
    return identity.user


def _identity_touch(identity: ExternalIdentity) -> None:
    identity.last_used_at = timezone.now()
    identity.save(update_fields=["last_used_at"])


def _identity_create(
    user: User, person: ProviderPerson, method: ExternalIdentity.Method
) -> ExternalIdentity:
    try:
        # A savepoint, so that losing a race to the same first sign-in in another request
        # leaves this transaction usable for the refusal.
        with transaction.atomic():
            return ExternalIdentity.objects.create(
                user=user, issuer=person.issuer, subject=person.subject, method=method
            )
    except IntegrityError:
        raise SignInRefused(
            f"This {person.provider} account was linked to an account here a moment ago;"
            " sign in again."
        ) from None


def _user_create(email: str) -> User:
    username = email.lower()[:150]
    if User.objects.filter(username=username).exists():
        username = f"{username[:140]}-{secrets.token_hex(4)}"
    user = User(username=username, email=email)
    user.set_unusable_password()
    user.save()
    return user


def identity_user_find_or_create(person: ProviderPerson) -> User:
    """The account a provider that vouches for its members signs in (an LTI platform): as
    :func:`identity_user_find` with ``create``, except that a person the provider names without
    an email address gets a new account of their own (a generated username, never an existing
    account's) instead of a refusal."""
    if person.email.strip():
        return identity_user_find(person, create=True)
    if not person.subject:
        return identity_user_find(person, create=True)  # refuses: no subject
    with transaction.atomic():
        transaction_lock(f"identity {person.issuer} {person.subject}")
        linked = _identity_use(person)
        if linked is not None:
            return linked
        while True:
            username = f"lms-{secrets.token_hex(5)}"
            if not User.objects.filter(username=username).exists():
                break
        user = User(username=username)
        user.set_unusable_password()
        user.save()
        _identity_create(user, person, ExternalIdentity.Method.CREATED)
        return user
