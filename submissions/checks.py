"""System checks (``manage.py check``, and every ``runserver``/``migrate``): the object store."""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Error, register

from submissions.storage import storage_problem


@register("storage")
def check_object_store(app_configs: Any = None, **_: Any) -> list[CheckMessage]:
    problem = storage_problem()
    if problem is None:
        return []
    return [
        Error(
            f"MEDIA_STORAGE=s3: {problem}",
            hint="Create the bucket or fix the AWS_* variables; uploads cannot be stored.",
            id="submissions.E001",
        )
    ]
