"""The upload form (file checks in ``clean_file``, the challenge's window in ``clean``) and
``upload_submit``, the one path from a posted form to a queued submission that the page and
the API both take: a refusal reads the same in both, as a status, a code and a message."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from django import forms
from django.core.files.uploadedfile import UploadedFile
from django.http import HttpRequest
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, gettext_noop

from courses.models import Challenge, Enrollment
from grader import formats
from grader.errors import GradingError
from grader.formats.upload import check_upload
from submissions.models import Submission
from submissions.services import SubmissionRefused, submission_check_window, submission_create
from submissions.storage import StorageUnavailable
from submissions.wording import student_message

#: refusals of the window (not of the file), and the API status each maps to
WINDOW_STATUS = {
    "not_enrolled": 403,
    "closed": 409,
    "deadline": 409,
    "quota": 429,
    # the platform could not store the upload (a full disk): try again later
    "storage": 503,
}
#: room for the multipart envelope around the file
MULTIPART_OVERHEAD = 64 * 1024


def upload_too_large(request: HttpRequest, challenge: Challenge) -> str | None:
    """Refuse an oversized upload by its Content-Length, before Django spools it to disk.

    The form checks the real size too; this only keeps a huge body from filling the disk.
    """
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
    if length <= challenge.max_file_bytes + MULTIPART_OVERHEAD:
        return None
    return _("The upload is %(size)s MB; this challenge accepts files up to %(max)s MB.") % {
        "size": number_format(round(length / 1e6, 1), 1),
        "max": challenge.max_file_mb,
    }


@contextmanager
def _on_disk(upload: UploadedFile) -> Iterator[Path]:
    """A path to the upload: Django already spooled large files to disk; small ones we write."""
    temporary_file_path = getattr(upload, "temporary_file_path", None)
    if temporary_file_path is not None:
        yield Path(temporary_file_path())
        return
    with tempfile.NamedTemporaryFile(prefix="upload-", suffix=".bin") as tmp:
        for chunk in upload.chunks():
            tmp.write(chunk)
        tmp.flush()
        yield Path(tmp.name)


def _sentence(text: str) -> str:
    # The grader writes clauses ("the file is empty"); a form shows sentences.
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


class UploadForm(forms.Form):
    file = forms.FileField(label=gettext_lazy("Model file"))

    def __init__(
        self,
        *args: Any,
        challenge: Challenge,
        enrollment: Enrollment,
        now: datetime | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.challenge = challenge
        self.enrollment = enrollment
        self.now = now or timezone.now()
        self.format = ""
        accepted = ", ".join(formats.FORMATS[f] for f in challenge.allowed_formats)
        self.fields["file"].help_text = _("Accepted: %(formats)s; at most %(max)s MB.") % {
            "formats": accepted,
            "max": challenge.max_file_mb,
        }

    def clean_file(self) -> UploadedFile:
        upload: UploadedFile = self.cleaned_data["file"]
        challenge = self.challenge
        # The format is told by content, never by the file name.
        with _on_disk(upload) as path:
            try:
                self.format = check_upload(
                    path,
                    allowed_formats=tuple(challenge.allowed_formats),
                    max_bytes=challenge.max_file_bytes,
                )
            except GradingError as exc:
                message = _sentence(student_message(exc.message))
                raise forms.ValidationError(message, code=exc.code) from exc
        return upload

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        try:
            submission_check_window(self.enrollment, self.challenge, self.now)
        except SubmissionRefused as exc:
            raise forms.ValidationError(exc.message, code=exc.code) from exc
        return cleaned

    def api_status(self) -> int:
        """The status an API client gets for this invalid form: the window first, then 400."""
        codes = {e.code for e in self.errors.as_data().get("__all__", [])}
        statuses = [WINDOW_STATUS[c] for c in codes if c in WINDOW_STATUS]
        return 409 if 409 in statuses else (statuses[0] if statuses else 400)


#: what a student reads when the object store is down: nothing was stored or charged
STORE_DOWN_MESSAGE = gettext_noop(
    "Your upload could not be stored because the file store is not available right now."
    " Nothing was charged to your quota: please try again in a minute."
)
#: seconds a client is asked to wait after a storage failure
STORAGE_RETRY_AFTER = 60


class UploadRefused(Exception):
    """Why an upload was not taken: the API's status and code, the student's message, and for
    a storage failure (code ``storage``) its ``reason``: ``full`` or ``unavailable``."""

    def __init__(self, http_status: int, code: str, message: str, *, reason: str = "") -> None:
        super().__init__(message)
        self.http_status, self.code, self.message = http_status, code, message
        self.reason = reason

    @property
    def retry_after(self) -> int | None:
        return STORAGE_RETRY_AFTER if self.code == "storage" else None


def upload_submit(form: UploadForm) -> Submission:
    """Check ``form`` (a bound ``UploadForm``), store its file and queue it; raises
    ``UploadRefused``. A refusal found after the form's own checks (the last quota slot taken
    meanwhile) is added to the form too, so a page shows it where it shows the others."""
    if not form.is_valid():
        first = next(e for errors in form.errors.as_data().values() for e in errors)
        raise UploadRefused(form.api_status(), first.code or "invalid", " ".join(first.messages))
    try:
        return submission_create(
            enrollment=form.enrollment,
            challenge=form.challenge,
            upload=form.cleaned_data["file"],
            fmt=form.format,
        )
    except SubmissionRefused as exc:
        if exc.code == "storage":  # a full disk
            raise UploadRefused(503, "storage", exc.message, reason="full") from exc
        form.add_error(None, forms.ValidationError(exc.message, code=exc.code))
        raise UploadRefused(WINDOW_STATUS.get(exc.code, 400), exc.code, exc.message) from exc
    except StorageUnavailable as exc:
        raise UploadRefused(503, "storage", _(STORE_DOWN_MESSAGE), reason="unavailable") from exc
