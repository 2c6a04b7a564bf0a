"""The object store from the submissions' side: is it reachable, and which of its errors mean
"the store is down" rather than a bug.

Uploads and pictures go through Django's default storage: a local folder (one host) or, with
``MEDIA_STORAGE=s3``, an S3-compatible store that web and worker hosts share. A missing bucket or
wrong credentials must stop a process at start-up with a message that says which, not surface
later as "a problem on our side" after a grading's retries.
"""

from __future__ import annotations

from django.conf import settings
from django.core.files.storage import default_storage


class StorageUnavailable(Exception):
    """The object store did not take or give a file (down, unreachable, refusing)."""


def store_errors() -> tuple[type[BaseException], ...]:
    """The exceptions of the configured store that mean an outage, for ``except`` clauses.

    Only the S3 client's: a local disk's ``OSError`` is its own case (a full disk, a bad mount).
    """
    if settings.MEDIA_STORAGE != "s3":
        return ()
    from botocore.exceptions import BotoCoreError, ClientError

    return (BotoCoreError, ClientError)


def storage_problem() -> str | None:
    """Why the configured store cannot be used, or None when it can (one request to the store)."""
    if settings.MEDIA_STORAGE != "s3":
        return None
    from botocore.exceptions import BotoCoreError, ClientError

    bucket = getattr(default_storage, "bucket_name", "")
    endpoint = getattr(default_storage, "endpoint_url", None) or "AWS"
    try:
        default_storage.connection.meta.client.head_bucket(Bucket=bucket)  # type: ignore[attr-defined]
    except ClientError as exc:
        status = str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if status == "404" or code in ("404", "NoSuchBucket"):
            return f"the bucket {bucket!r} does not exist at {endpoint} (AWS_STORAGE_BUCKET_NAME)"
        if status in ("401", "403"):
            return (
                f"the store at {endpoint} refused the credentials for bucket {bucket!r}"
                f" ({code or status}; check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
            )
        return f"the bucket {bucket!r} at {endpoint} answered {code or status}: {exc}"
    except BotoCoreError as exc:
        return f"the object store at {endpoint} is not reachable (AWS_S3_ENDPOINT_URL): {exc}"
    return None
