"""Keeps an API token working when Django re-hashes its user's unchanged password.

A token stops working when the stored password hash changes (``ApiToken.revoked``). Django also
changes that hash without a new password: at sign-in, when the hasher settings changed since
the password was set (more PBKDF2 iterations after a Django upgrade, another preferred hasher),
``AbstractBaseUser.check_password`` saves the same password under a new hash. Without this,
every student signing in after such an upgrade would find their token revoked "because your
password changed".
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models.signals import pre_save
from django.dispatch import receiver

from submissions.models import ApiToken, password_fingerprint


def is_rehash(user: Any, update_fields: frozenset[str] | None) -> bool:
    """Django's hash upgrade, as ``check_password`` saves it: only the password field, with
    ``_password`` (the raw password ``set_password`` keeps until the save) cleared because
    "password hash upgrades shouldn't be considered password changes". A new password from any
    page, the admin or ``set_password`` keeps ``_password`` until saved; an unusable password
    (an account locked out) is never a re-hash."""
    return (
        update_fields == frozenset({"password"})
        and getattr(user, "_password", None) is None
        and user.has_usable_password()
    )


@receiver(pre_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="api_token_follows_rehash")
def token_follow_rehash(
    sender: Any, instance: Any, update_fields: frozenset[str] | None, **kwargs: Any
) -> None:
    if instance.pk is None or not is_rehash(instance, update_fields):
        return
    before = sender.objects.filter(pk=instance.pk).values_list("password", flat=True).first()
    if before is None or before == instance.password:
        return
    # Only a token that worked under the old hash is carried over: one already revoked stays so.
    ApiToken.objects.filter(
        user_id=instance.pk, password_fingerprint=password_fingerprint(before)
    ).update(password_fingerprint=password_fingerprint(instance.password))
