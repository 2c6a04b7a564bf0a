"""The LTI tasks a worker runs (``config.celery`` includes this module), all on the
housekeeping queue: grade passback, retried with backoff while the platform fails; the nightly
roster sync and the hourly push of revealed results (beat)."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from django.conf import settings

from courses.models import Challenge

logger = logging.getLogger(__name__)


@shared_task(bind=True, name="lti.tasks.push_score", max_retries=None, ignore_result=True)
def push_score(self: Any, enrollment_id: int, challenge_id: int, force: bool = False) -> str:
    from lti.grades import PlatformFailed
    from lti.grades import push_score as push

    attempt = self.request.retries + 1
    last_try = attempt >= settings.LTI_PASSBACK_ATTEMPTS
    try:
        return str(push(enrollment_id, challenge_id, force=force, last_try=last_try))
    except PlatformFailed as exc:
        if last_try:
            logger.warning("grade passback failed for good after %d attempts: %s", attempt, exc)
            return f"failed: {exc}"
        wait = settings.LTI_PASSBACK_RETRY_SECONDS * 2 ** (attempt - 1)
        logger.info("grade passback failed (attempt %d), again in %d s: %s", attempt, wait, exc)
        raise self.retry(exc=exc, countdown=wait, queue=settings.HOUSEKEEPING_QUEUE) from exc


@shared_task(name="lti.tasks.push_challenge", ignore_result=True)
def push_challenge(challenge_id: int) -> str:
    from lti.grades import push_challenge as push

    challenge = Challenge.objects.select_related("semester__course").filter(pk=challenge_id).first()
    return "gone" if challenge is None else str(push(challenge))


@shared_task(name="lti.tasks.push_revealed", ignore_result=True)
def push_revealed() -> str:
    from lti.grades import push_revealed as push
    from lti.tool import launch_data_forget_expired

    # Hourly, so also the time to forget expired launch data and spent states and nonces.
    launch_data_forget_expired()
    return str(push())


@shared_task(name="lti.tasks.sync_rosters", ignore_result=True)
def sync_rosters() -> str:
    from lti.roster import roster_sync

    counts = roster_sync()
    logger.info("LTI roster sync: %s", counts)
    return str(counts)
