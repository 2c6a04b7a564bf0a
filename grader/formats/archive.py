"""Checks on a zip archive's directory before anything reads its members: entry count, declared
sizes, compression ratio (zip bombs), absolute or ``..`` paths, links and twins. Every zip-based
format (``pt2``, ``torchscript``, ``course_zip``) passes these first. No torch."""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path

from grader.errors import GradingError
from grader.i18n import gettext_noop

MAX_ENTRIES = 10_000
MAX_UNCOMPRESSED = 2 << 30
MAX_RATIO = 200


def check_zip(path: Path) -> None:
    """Entry count, declared sizes, compression ratio, absolute or ``..`` paths, links, twins."""
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
    if len(infos) > MAX_ENTRIES:
        raise GradingError(
            "archive_entries",
            gettext_noop("the archive has %(entries)s entries; at most %(max)s")
            % {"entries": f"{len(infos):,}", "max": f"{MAX_ENTRIES:,}"},
        )
    total = 0
    seen: set[str] = set()
    for info in infos:
        name = info.filename
        parts = name.replace("\\", "/").split("/")
        if name.startswith(("/", "\\")) or ".." in parts or (len(name) > 1 and name[1] == ":"):
            raise GradingError(
                "archive_path",
                gettext_noop("the archive holds an entry with an unsafe path: %(name)s")
                % {"name": repr(name[:100])},
            )
        if stat.S_ISLNK(info.external_attr >> 16):
            raise GradingError(
                "archive_symlink",
                gettext_noop("the archive holds a symbolic link: %(name)s")
                % {"name": repr(name[:100])},
            )
        if name in seen:
            raise GradingError(
                "archive_duplicate",
                gettext_noop("the archive holds %(name)s more than once")
                % {"name": repr(name[:100])},
            )
        seen.add(name)
        total += info.file_size
        ratio = info.file_size // max(info.compress_size, 1)
        if ratio > MAX_RATIO and info.file_size > 1 << 20:
            raise GradingError(
                "archive_bomb",
                gettext_noop(
                    "the archive entry %(name)s expands %(ratio)s times; that looks like a zip bomb"
                )
                % {"name": repr(name[:100]), "ratio": ratio},
            )
    if total > MAX_UNCOMPRESSED:
        raise GradingError(
            "archive_too_large",
            gettext_noop("the archive expands to %(size)s GB; at most %(max)s GB")
            % {"size": f"{total / (1 << 30):.1f}", "max": f"{MAX_UNCOMPRESSED / (1 << 30):.0f}"},
        )
