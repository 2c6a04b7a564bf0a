"""Fixtures shared by every test folder."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

    from courses.models import Course, Semester

CHROMIUM = "/usr/bin/chromium"
#: test folders of the grading libraries, which never import Django
NO_DJANGO_FOLDERS = {"grader", "eval_data"}


@pytest.fixture(scope="session", autouse=True)
def compiled_catalogues() -> None:
    """The translations' .mo files, compiled from the committed .po files when missing or older
    (``make test`` compiles them too; a plain ``pytest`` run must not show English instead)."""
    import subprocess

    for po in sorted((Path(__file__).resolve().parents[1] / "locale").glob("*/LC_MESSAGES/*.po")):
        mo = po.with_suffix(".mo")
        if not mo.exists() or mo.stat().st_mtime < po.stat().st_mtime:
            subprocess.run(["msgfmt", "--check", "-o", str(mo), str(po)], check=True)


@pytest.fixture(scope="session")
def demo_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The demo models (each kind × pass/fail), trained once per session; a test that uses
    them is marked slow (``pytest_collection_modifyitems``)."""
    from eval_data.demo_models import build_demo_models

    return build_demo_models(tmp_path_factory.mktemp("demo-models"), seed=0)


@pytest.fixture(scope="session")
def chromium() -> Iterator[Browser]:
    """Debian's chromium through Playwright, one for the whole session: Playwright's sync API
    allows one running instance per thread, so every browser test shares this one."""
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: run `make install-dev` (apt-get install chromium)")
    # Playwright's sync API runs an event loop in this thread; the ORM calls the tests make
    # around it are still plain synchronous calls.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def tab(chromium: Browser) -> Iterator[Page]:
    """A fresh browser context and page per test (no cookies shared between tests)."""
    context = chromium.new_context()
    page = context.new_page()
    page.set_default_timeout(20_000)
    yield page
    context.close()


#: the folders ``make test`` runs again on PostgreSQL + Redis (its second pass)
SERVICE_PASS_FOLDERS = ("tests/platform/", "tests/integration/")


def postgres_tests_outside_the_second_pass(items: list[pytest.Item], root: Path) -> list[str]:
    """``postgres`` tests that no pass would ever run: outside the second pass's folders."""
    return [
        item.nodeid
        for item in items
        if item.get_closest_marker("postgres") is not None
        and not Path(item.path)
        .resolve()
        .relative_to(root)
        .as_posix()
        .startswith(SERVICE_PASS_FOLDERS)
    ]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``postgres`` need PostgreSQL's locking between connections: on the embedded
    SQLite default they are deselected (listed as such), and ``make test``'s second pass, on
    PostgreSQL, runs them. One outside that pass's folders would silently never run: the
    collection fails instead."""
    from django.conf import settings

    # Training the demo models takes most of a minute: whatever uses them is slow, so the quick
    # loop (-m "not slow") never trains them.
    for item in items:
        if "demo_models" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)
    stray = postgres_tests_outside_the_second_pass(items, Path(config.rootpath).resolve())
    if stray:
        raise pytest.UsageError(
            "marked postgres but outside the folders make test runs on PostgreSQL"
            f" ({', '.join(SERVICE_PASS_FOLDERS)}): {', '.join(stray)}"
        )

    if "postgresql" in settings.DATABASES["default"]["ENGINE"]:
        return
    chosen = [item for item in items if item.get_closest_marker("postgres") is None]
    if len(chosen) != len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in chosen])
        items[:] = chosen


# --- the one course and semester every Django test folder builds on ---------------------------


@pytest.fixture
def course(db: None) -> Course:
    """The course. Folders whose tests need committed rows (a real worker, a browser) ask for
    ``transactional_db`` in an autouse fixture of their own; pytest-django then gives that to
    ``db`` as well."""
    from courses.models import Course

    return Course.objects.create(
        slug="i2dl", title="Introduction to Deep Learning", timezone="Europe/Berlin"
    )


@pytest.fixture
def semester(course: Course) -> Semester:
    from courses.models import Semester

    return Semester.objects.create(
        course=course,
        slug="ws2026",
        title="Winter 2026/27",
        starts_on="2026-10-01",
        is_current=True,
    )


@pytest.fixture(autouse=True)
def empty_caches(request: pytest.FixtureRequest) -> None:
    """Computed boards, charts and the body limit are cached per process: every test of the
    platform starts without them (the grading libraries' tests import no Django at all)."""
    if Path(request.node.path).parent.name in NO_DJANGO_FOLDERS:
        return
    from django.core.cache import cache

    from leaderboard.board_pages import board_pages_forget
    from leaderboard.boards import leaderboard_forget
    from leaderboard.body_limit import forget_limit

    cache.clear()
    leaderboard_forget()
    board_pages_forget()
    forget_limit()
