"""Checks an upload passes before anything loads it. No torch: the web process runs these.

Format by content, size against the challenge's limit, the format allowed by the challenge, and
the static archive checks of ``grader.static_checks`` (structure and JSON only, nothing loaded).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from grader import formats
from grader.errors import GradingError
from grader.static_checks import check_static, check_zip


def check_upload(path: Path, *, allowed_formats: tuple[str, ...], max_bytes: int) -> str:
    """Return the file's format, or raise ``GradingError`` saying what to change."""
    size = Path(path).stat().st_size
    if size > max_bytes:
        raise GradingError(
            "file_too_large",
            f"the file is {size / 1e6:.1f} MB; this challenge accepts files up to"
            f" {max_bytes / 1e6:.0f} MB",
        )
    if zipfile.is_zipfile(path):
        check_zip(path)  # before detection reads any member
    fmt = formats.detect_format(path)
    if fmt not in allowed_formats:
        allowed = ", ".join(formats.FORMATS[f] for f in allowed_formats)
        raise GradingError(
            "format_not_allowed",
            f"this challenge does not accept {formats.FORMATS[fmt]} files; it accepts: {allowed}",
        )
    check_static(path, fmt)  # format-specific checks on structure and JSON
    return fmt
