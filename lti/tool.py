"""The plumbing between pylti1p3 / django-lti and this site: where launch data is stored, which
registrations and deployments count, and the tool's key pair.

Validation itself (signature against the platform's key set fetched over HTTP, issuer,
audience, expiry, nonce, deployment) is pylti1p3's ``MessageLaunch.validate``; this module only
answers its questions from the database.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from lti_tool.models import Key, LtiDeployment, LtiRegistration
from lti_tool.utils import DjangoToolConfig
from pylti1p3.deployment import Deployment
from pylti1p3.launch_data_storage.base import LaunchDataStorage

from lti.models import LaunchSpent, LaunchValue

#: how long a login's state and nonce, and a launch's data, are kept
LAUNCH_DATA_SECONDS = 2 * 3600


class DatabaseLaunchData(LaunchDataStorage[Any]):
    """pylti1p3's launch data storage in the database: the OIDC login and the launch may reach
    two different web processes (the default cache is per process)."""

    def get_session_cookie_name(self) -> str | None:
        # Keys are random states, nonces and launch ids: no session prefix, so a launch inside
        # a frame whose cookies the browser keeps apart still finds them.
        return None

    def can_set_keys_expiration(self) -> bool:
        return True

    def get_value(self, key: str) -> Any:
        row = (
            LaunchValue.objects.filter(key=self._prepare_key(key)[:255])
            .exclude(expires_at__lt=timezone.now())
            .values_list("value", flat=True)
            .first()
        )
        return row

    def set_value(self, key: str, value: Any, exp: int | None = None) -> None:
        expires = timezone.now() + timedelta(seconds=exp or LAUNCH_DATA_SECONDS)
        LaunchValue.objects.update_or_create(
            key=self._prepare_key(key)[:255], defaults={"value": value, "expires_at": expires}
        )

    def check_value(self, key: str) -> bool:
        return (
            LaunchValue.objects.filter(key=self._prepare_key(key)[:255])
            .exclude(expires_at__lt=timezone.now())
            .exists()
        )


def launch_data_forget_expired() -> int:
    """Delete expired launch data and spent states/nonces older than any token could be."""
    now = timezone.now()
    gone, _ = LaunchValue.objects.filter(expires_at__lt=now).delete()
    old, _ = LaunchSpent.objects.filter(
        spent_at__lt=now - timedelta(seconds=LAUNCH_DATA_SECONDS)
    ).delete()
    return gone + old


class ToolConfig(DjangoToolConfig):
    """django-lti's tool configuration, except that a deployment the platform names must be
    registered here and active: django-lti would create an unknown one (inactive) on the fly."""

    def find_deployment(self, iss: str, deployment_id: str) -> Deployment | None:
        return self._deployment(
            registration__issuer=iss,
            registration__uuid=self.registration_uuid,
            deployment_id=deployment_id,
        )

    def find_deployment_by_params(
        self, iss: str, deployment_id: str, client_id: str, *args: Any, **kwargs: Any
    ) -> Deployment | None:
        lookups: dict[str, Any] = {
            "registration__issuer": iss,
            "registration__client_id": client_id,
            "deployment_id": deployment_id,
        }
        if self.registration_uuid is not None:
            lookups["registration__uuid"] = self.registration_uuid
        return self._deployment(**lookups)

    def _deployment(self, **lookups: Any) -> Deployment | None:
        deployment = (
            LtiDeployment.objects.filter(registration__is_active=True, is_active=True, **lookups)
            .select_related("registration")
            .first()
        )
        self.deployment = deployment
        if deployment is None:
            return None
        return Deployment().set_deployment_id(deployment.deployment_id)


def spend_once(state: str, nonce: str) -> bool:
    """Record that a launch used ``state`` and ``nonce``; False if either was used before
    (a replayed id_token or state)."""
    try:
        with transaction.atomic():
            LaunchSpent.objects.create(kind=LaunchSpent.Kind.STATE, value=state[:255])
            LaunchSpent.objects.create(kind=LaunchSpent.Kind.NONCE, value=nonce[:255])
    except IntegrityError:
        return False
    return True


def tool_key() -> Key:
    """The key the tool signs with (the newest active one), generated the first time."""
    with transaction.atomic():
        key = Key.objects.active().order_by("-datetime_created", "-pk").first()
        if key is None:
            key = Key.objects.generate()
        return key


def key_rotate() -> Key:
    """A new key pair that signs from now on; the older ones stay published (the platform may
    hold tokens or a cached key set) until ``key_retire``."""
    return Key.objects.generate()


def key_retire(kid: str) -> bool:
    """Stop publishing the key ``kid`` (never the newest active one)."""
    newest = tool_key()
    for key in Key.objects.active():
        if str(key) == kid and key.pk != newest.pk:
            key.is_active = False
            key.save(update_fields=["is_active", "datetime_modified"])
            return True
    return False


def registration_save(
    *,
    issuer: str,
    client_id: str,
    deployment_ids: list[str],
    auth_url: str,
    token_url: str,
    keyset_url: str,
    name: str = "",
) -> LtiRegistration:
    """Register a platform, or update its registration; the deployments named are active."""
    with transaction.atomic():
        registration, _ = LtiRegistration.objects.update_or_create(
            issuer=issuer,
            client_id=client_id,
            defaults={
                "name": name or issuer,
                "auth_url": auth_url,
                "token_url": token_url,
                "keyset_url": keyset_url,
                "is_active": True,
            },
        )
        for deployment_id in deployment_ids:
            LtiDeployment.objects.update_or_create(
                registration=registration,
                deployment_id=deployment_id,
                defaults={"is_active": True},
            )
    tool_key()
    return registration
