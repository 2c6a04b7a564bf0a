"""The upload form: file checks in ``clean_file``, the challenge's window in ``clean``."""

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

from courses.models import Challenge, Enrollment
from grader import formats
from grader.errors import GradingError
from grader.formats.upload import check_upload
from submissions.services import SubmissionRefused, submission_check_window

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
    return (
        f"The upload is {length / 1e6:.1f} MB; this challenge accepts files up to"
        f" {challenge.max_file_mb} MB."
    )


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
    file = forms.FileField(label="Model file")

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
        self.fields["file"].help_text = f"Accepted: {accepted}; at most {challenge.max_file_mb} MB."

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
                raise forms.ValidationError(_sentence(exc.message), code=exc.code) from exc
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
