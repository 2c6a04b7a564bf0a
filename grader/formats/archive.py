"""Checks on a zip archive's directory before anything reads its members: entry count, declared
sizes, compression ratio (zip bombs), absolute or ``..`` paths, links and twins. Every zip-based
format (``pt2``, ``torchscript``, ``course_zip``) passes these first. No torch."""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path

from grader.errors import GradingError

MAX_ENTRIES = 10_000
MAX_UNCOMPRESSED = 2 << 30
MAX_RATIO = 200


def check_zip(path: Path) -> None:
    """Entry count, declared sizes, compression ratio, absolute or ``..`` paths, links, twins."""
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
    if len(infos) > MAX_ENTRIES:
        raise GradingError(
            "archive_entries", f"the archive has {len(infos):,} entries; at most {MAX_ENTRIES:,}"
        )
    total = 0
    seen: set[str] = set()
    for info in infos:
        name = info.filename
        parts = name.replace("\\", "/").split("/")
        if name.startswith(("/", "\\")) or ".." in parts or (len(name) > 1 and name[1] == ":"):
            raise GradingError(
                "archive_path", f"the archive holds an entry with an unsafe path: {name[:100]!r}"
            )
        if stat.S_ISLNK(info.external_attr >> 16):
            raise GradingError(
                "archive_symlink", f"the archive holds a symbolic link: {name[:100]!r}"
            )
        if name in seen:
            raise GradingError(
                "archive_duplicate", f"the archive holds {name[:100]!r} more than once"
            )
        seen.add(name)
        total += info.file_size
        ratio = info.file_size // max(info.compress_size, 1)
        if ratio > MAX_RATIO and info.file_size > 1 << 20:
            raise GradingError(
                "archive_bomb",
                f"the archive entry {name[:100]!r} expands {ratio} times; that looks like a"
                " zip bomb",
            )
    if total > MAX_UNCOMPRESSED:
        raise GradingError(
            "archive_too_large",
            f"the archive expands to {total / (1 << 30):.1f} GB; at most"
            f" {MAX_UNCOMPRESSED / (1 << 30):.0f} GB",
        )
