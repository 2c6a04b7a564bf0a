"""What the processes load, checked in fresh interpreters (README, "Architecture").

``grader`` and ``eval_data`` never import Django; what the web process imports from the grader
(task metadata, format detection, upload checks) never imports torch, and neither does the
whole web app once its URLs are loaded.
"""

from __future__ import annotations

import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

WEB_SIDE = [
    "grader.kinds",
    "grader.formats",
    "grader.formats.upload",
    "grader.errors",
    "grader.evaluate",
]


def imported_after(code: str) -> set[str]:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"}
    result = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys; print(' '.join(sorted(sys.modules)))"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return set(result.stdout.split())


def all_modules(package: str) -> list[str]:
    path = ROOT / package.replace(".", "/")
    return [package] + [
        info.name
        for info in pkgutil.walk_packages([str(path)], prefix=f"{package}.")
        if not info.ispkg
    ]


@pytest.mark.parametrize("package", ["grader", "eval_data"])
def test_it_keeps_django_out_of_the_grading_libraries(package: str) -> None:
    modules = [m for m in all_modules(package) if not m.endswith("__main__")]
    loaded = imported_after("\n".join(f"import {m}" for m in modules))
    assert not any(name == "django" or name.startswith("django.") for name in loaded)


def test_it_keeps_torch_out_of_what_the_web_process_imports_from_the_grader() -> None:
    loaded = imported_after(
        "\n".join(f"import {m}" for m in WEB_SIDE)
        + "\nimport grader.kinds as t; [t.get_kind(n) for n in t.kind_names()]"
    )
    assert "torch" not in loaded


def test_it_keeps_torch_out_of_the_web_process() -> None:
    loaded = imported_after("import django; django.setup(); import config.urls, config.wsgi")
    assert "torch" not in loaded
    assert "django" in loaded
