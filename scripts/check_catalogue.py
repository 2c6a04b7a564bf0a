"""Fail when a translation catalogue is incomplete or stale: ``make lint`` runs it.

Complete: no untranslated and no fuzzy entry in any ``locale/*/LC_MESSAGES/*.po``, and
``msgfmt -c`` accepts it (placeholders agree between msgid and msgstr). Up to date:
``makemessages``, run on a temporary copy of the source, finds exactly the msgids the committed
catalogue holds, so an English string added without its translation (or one left behind after
its source went) fails the check. Run as ``python scripts/check_catalogue.py [ROOT]``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import polib

#: what makemessages reads and writes (manage.py makemessages arguments, also for developers)
DOMAINS = {"django": ["--extension=html,txt,py"], "djangojs": ["--extension=js"]}
#: folders that hold no translatable source
SKIP = shutil.ignore_patterns(
    ".*", "var", "node_modules", "__pycache__", "tests", "benchmarks", "docs", "deploy", "*.mo"
)


def makemessages_args(domain: str) -> list[str]:
    return [
        "makemessages",
        "--all",
        "--domain",
        domain,
        *DOMAINS[domain],
        "--ignore=tests/*",
        "--ignore=benchmarks/*",
        "--no-obsolete",
        "--no-location",
    ]


def entries(path: Path) -> set[tuple[str | None, str, str | None]]:
    return {(e.msgctxt, e.msgid, e.msgid_plural or None) for e in polib.pofile(str(path))}


def problems(root: Path) -> list[str]:
    found: list[str] = []
    catalogues = sorted((root / "locale").glob("*/LC_MESSAGES/*.po"))
    if not catalogues:
        return [f"no catalogue under {root / 'locale'}"]
    for path in catalogues:
        name = path.relative_to(root)
        po = polib.pofile(str(path))
        for entry in po.untranslated_entries():
            found.append(f"{name}: untranslated: {entry.msgid!r}")
        for entry in po.fuzzy_entries():
            found.append(f"{name}: fuzzy: {entry.msgid!r}")
        check = subprocess.run(
            ["msgfmt", "--check", "-o", "/dev/null", str(path)], capture_output=True, text=True
        )
        if check.returncode:
            found.append(f"{name}: msgfmt --check: {check.stderr.strip()}")
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "src"
        shutil.copytree(root, copy, ignore=SKIP)
        for domain in DOMAINS:
            subprocess.run(
                [sys.executable, "manage.py", *makemessages_args(domain)],
                cwd=copy,
                check=True,
                capture_output=True,
                env={**os.environ, "VAR_DIR": str(Path(tmp) / "var")},
            )
        for path in sorted((copy / "locale").glob("*/LC_MESSAGES/*.po")):
            name = path.relative_to(copy)
            committed = root / name
            fresh = entries(path)
            held = entries(committed) if committed.exists() else set()
            for _ctxt, msgid, _ in sorted(fresh - held, key=str):
                found.append(f"{name}: not in the catalogue (run makemessages): {msgid!r}")
            for _ctxt, msgid, _ in sorted(held - fresh, key=str):
                found.append(f"{name}: no longer in the source (run makemessages): {msgid!r}")
    return found


def main() -> int:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent)
    found = problems(root.resolve())
    for line in found:
        print(line, file=sys.stderr)
    if found:
        print(f"{len(found)} catalogue problem(s)", file=sys.stderr)
        return 1
    print("translation catalogues complete and up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
