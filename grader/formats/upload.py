"""The checks every upload passes before anything loads it. No torch: the web process runs these.

Size against the challenge's limit, the zip directory (``archive``), the format by content, the
format allowed by the challenge, and the format's own static check (``pt2``, ``onnx``: structure
and JSON only, nothing loaded).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from grader import formats
from grader.errors import GradingError
from grader.formats.archive import check_zip
from grader.formats.onnx import check_onnx
from grader.formats.pt2 import sanitize_pt2
from grader.i18n import gettext_noop
from grader.limits import MB


def check_upload(path: Path, *, allowed_formats: tuple[str, ...], max_bytes: int) -> str:
    """Return the file's format, or raise ``GradingError`` saying what to change."""
    return prepare_upload(path, allowed_formats=allowed_formats, max_bytes=max_bytes)[0]


def prepare_upload(
    path: Path, *, allowed_formats: tuple[str, ...], max_bytes: int
) -> tuple[str, bytes]:
    """``check_upload``, plus the bytes the model process is to load: a ``.pt2`` is rebuilt
    from its checked members (see ``grader.formats.pt2.sanitize_pt2``), never sent as
    uploaded."""
    size = Path(path).stat().st_size
    if size > max_bytes:
        raise GradingError(
            "file_too_large",
            gettext_noop("the file is %(size)s MB; this challenge accepts files up to %(max)s MB")
            % {"size": f"{size / MB:.1f}", "max": f"{max_bytes / MB:.0f}"},
        )
    if zipfile.is_zipfile(path):
        check_zip(path)  # before detection reads any member
    fmt = formats.detect_format(path)
    if fmt not in allowed_formats:
        allowed = ", ".join(formats.FORMATS[f] for f in allowed_formats)
        raise GradingError(
            "format_not_allowed",
            gettext_noop("this challenge does not accept %(format)s files; it accepts: %(allowed)s")
            % {"format": formats.FORMATS[fmt], "allowed": allowed},
        )
    return fmt, check_static(path, fmt)  # format-specific checks on structure and JSON


def check_static(path: Path, fmt: str) -> bytes:
    """Format-specific checks; return the bytes the model process is to load.

    ``check_zip`` has already run on zip-based formats. A ``.pt2`` comes back rewritten (see
    ``sanitize_pt2``); every other format comes back as it is.
    """
    if fmt == formats.PT2:
        return sanitize_pt2(path)
    if fmt == formats.ONNX:
        check_onnx(path)
    return Path(path).read_bytes()
