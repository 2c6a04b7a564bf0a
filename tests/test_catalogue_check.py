"""The translation check of ``make lint`` (scripts/check_catalogue.py), run on a copy of the
source: it passes on the committed catalogues and fails on an untranslated entry, a fuzzy one
and an English string added without its translation."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import polib
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "check_catalogue.py"


def check(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), str(root)], capture_output=True, text=True, timeout=300
    )


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    target = tmp_path / "src"
    shutil.copytree(
        ROOT,
        target,
        ignore=shutil.ignore_patterns(".*", "var", "tests", "docs", "__pycache__", "*.mo"),
    )
    return target


@pytest.mark.slow
def test_it_passes_the_committed_catalogues_and_fails_on_a_missing_translation(copy: Path):
    assert check(copy).returncode == 0

    po_path = copy / "locale" / "de" / "LC_MESSAGES" / "django.po"
    po = polib.pofile(str(po_path))
    po.find("Upload a model").msgstr = ""
    po.find("Sign out").flags.append("fuzzy")
    po.save()
    template = copy / "leaderboard" / "templates" / "leaderboard" / "public" / "home_public.html"
    template.write_text(template.read_text() + '{% translate "A sentence nobody translated" %}\n')

    result = check(copy)

    assert result.returncode == 1
    assert "untranslated: 'Upload a model'" in result.stderr
    assert "fuzzy: 'Sign out'" in result.stderr
    assert "not in the catalogue (run makemessages): 'A sentence nobody translated'" in (
        result.stderr
    )
