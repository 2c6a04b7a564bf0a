"""Every page a student or staff member uses, in a real browser, on a desktop and a phone screen.

For each page, at 1,280 px and at 390 px, signed out, as a student and as staff, in English and
in German, the test runs axe-core (``node_modules/axe-core``, from ``package.json``; ``make
install-dev`` runs ``npm ci``) with every one of its rules, and checks that the page is no wider
than the screen, that ``<html lang>`` names the language and that German pages speak German.
Problems are collected over all pages and reported together, one line each.

The course is seeded straight into the database (graded rows, a stored picture, a re-grade batch,
worker heartbeats): what is checked is how the pages read, not the grading, so no worker runs.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from playwright.sync_api import Browser, Page

from courses.models import Challenge, Enrollment, Semester
from submissions.models import GradingRun, HealthAlert, RegradeBatch, Submission, WorkerHeartbeat
from tests.integration.conftest import make_challenge
from tests.platform.conftest import make_submission

pytestmark = [
    pytest.mark.integration,
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
WIDTHS = (1280, 390)
#: a thumb's tap target (WCAG 2.5.5, Apple's and Google's guidelines): the upload form's controls
THUMB_PX = 44
#: words a German reader finds on these pages, in the title or the text, in any case
GERMAN = {"board": "Rangliste", "challenge": "Hochladen"}
#: what the seeded pages must show, so that axe looks at it: charts with their tables of numbers
SHOWS = {
    "board": "figure.histogram img",
    "result-pictures": "figure.samples img",
    "result-charts": "details.chart-numbers table",
}

# Every rule axe-core knows, the experimental ones included; only violations count (what axe
# cannot decide, "incomplete", is left to people).
RUN_AXE = """async () => {
  const rules = axe.getRules().map((rule) => rule.ruleId);
  const result = await axe.run(document, {
    runOnly: {type: "rule", values: rules}, resultTypes: ["violations"],
  });
  return result.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    targets: v.nodes.map((n) => n.target.join(" ")),
  }));
}"""

#: the elements that stick out past the screen's right edge, outermost first
STICKING_OUT = """(screen) => Array.from(document.querySelectorAll("body *"))
  .filter((el) => el.getBoundingClientRect().right > screen + 0.5)
  .slice(0, 4)
  .map((el) => `${el.tagName.toLowerCase()}${el.className ? "." + el.className : ""}`
    + ` (${Math.round(el.getBoundingClientRect().right)} px)`)"""

#: parts of a page that change while it is open (a status, a place in the queue, the health
#: tables), outside a polite live region: a screen reader would not hear them change
SILENT = """() => Array.from(document.querySelectorAll("[data-field], #health"))
  .filter((el) => !el.closest("[aria-live=polite]"))
  .map((el) => el.getAttribute("data-field") || el.id)"""

MEASURE = """() => ({
  width: document.documentElement.scrollWidth,
  screen: window.innerWidth,
  lang: document.documentElement.lang,
  text: `${document.title}\n${document.body.innerText}`,
})"""


@dataclass
class Site:
    """The seeded course: who signs in, and which pages each of them visits (name -> path)."""

    student: User
    staff: User
    anonymous: dict[str, str] = field(default_factory=dict)
    student_pages: dict[str, str] = field(default_factory=dict)
    staff_pages: dict[str, str] = field(default_factory=dict)


def png() -> bytes:
    """A small real PNG, standing in for the pictures a worker draws on public samples."""
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (480, 120), (128, 0, 0)).save(out, format="PNG")
    return out.getvalue()


def graded(
    enrollment: Enrollment, challenge: Challenge, score: float, minutes_ago: int, **metrics: Any
) -> Submission:
    return make_submission(
        enrollment,
        challenge,
        created_at=timezone.now() - timedelta(minutes=minutes_ago),
        original_name="model_with_a_rather_long_file_name_from_a_notebook_export.pt2",
        status=Submission.Status.GRADED,
        score=score,
        passed=score >= challenge.threshold,
        metrics={"score": score, **metrics},
    )


def seed(semester: Semester) -> Site:
    keypoints = make_challenge(semester, "keypoints")
    segmentation = make_challenge(semester, "segmentation")
    classification = make_challenge(semester, "classification")
    student = User.objects.create_user(
        "student", "student@example.com", "student", first_name="Ada", last_name="Lovelace"
    )
    mine = Enrollment.objects.create(user=student, semester=semester)
    others = [
        Enrollment.objects.create(
            user=User.objects.create_user(
                f"student{n}",
                f"student{n}.with.a.long.address@university.example.com",
                "x",
                first_name="Maximilian",
                last_name=f"Mustermann-Schmidt {n}",
            ),
            semester=semester,
        )
        for n in range(6)
    ]
    for n, enrollment in enumerate(others):
        score = 40.0 + 30 * n
        graded(enrollment, keypoints, score, 50 + n, mse=1 / (2 * score))
    best = graded(mine, keypoints, 123.456, 30, mse=1 / (2 * 123.456))
    failed = make_submission(
        mine,
        keypoints,
        original_name="broken.pt2",
        status=Submission.Status.FAILED,
        error="The model's output has shape (8, 15), but this challenge needs (8, 30): one x and"
        " one y for each of the 15 keypoints.",
        created_at=timezone.now() - timedelta(minutes=20),
    )
    queued = make_submission(
        mine, keypoints, original_name="waiting.pt2", status=Submission.Status.QUEUED
    )

    from eval_data.kinds.segmentation import LABEL_COLOURS

    classes = [name for class_id, name, _ in LABEL_COLOURS if class_id >= 0]
    accuracy = [0.5 + 0.4 * math.sin(n) ** 2 for n in range(len(classes))]
    iou = [a * 0.8 for a in accuracy]
    masks = graded(
        mine,
        segmentation,
        0.81,
        10,
        accuracy=0.81,
        pooled_accuracy=0.79,
        per_class_accuracy=accuracy,
        per_class_iou=iou,
        count=12,
    )
    name = f"figures/{masks.pk}-samples.png"
    Submission.objects.filter(pk=masks.pk).update(
        pictures={"samples": default_storage.save(name, ContentFile(png()))}
    )
    labels = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship"]
    confusion = [
        [20 if i == j else (i + j) % 3 for j in range(len(labels))] for i in range(len(labels))
    ]
    categories = graded(
        mine,
        classification,
        0.72,
        5,
        accuracy=0.72,
        per_class_accuracy={label: 0.5 + 0.05 * n for n, label in enumerate(labels)},
        confusion=confusion,
    )

    staff = User.objects.create_user("staff", "staff@example.com", "staff", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_gradebook"))
    GradingRun.objects.create(
        submission=best,
        attempt=1,
        outcome=GradingRun.Outcome.GRADED,
        worker_host="gpu-worker-01.example.com",
        device="cuda:0",
        runner="sandbox",
        torch_version="2.5.1+cu124",
        grader_version="1.4.0",
        dataset_hash="9f" * 32,
        finished_at=timezone.now(),
        score=123.456,
        log="loading model.pt2 ... exported program with a dynamic batch dimension "
        + "x" * 300
        + "\n"
        + "\n".join(f"batch {n}: 8 images in 0.0{n} s" for n in range(40)),
    )
    batch = RegradeBatch.objects.create(
        challenge=keypoints,
        created_by=staff,
        reason="The hidden test set had two mislabelled images; graded again with the fix.",
        status=RegradeBatch.Status.COMPLETE,
        total=2,
        finished_at=timezone.now(),
    )
    for attempt, (submission, new) in enumerate([(best, 130.5), (masks, 0.6)], start=2):
        GradingRun.objects.create(
            submission=submission,
            attempt=attempt,
            batch=batch,
            outcome=GradingRun.Outcome.GRADED,
            score=new,
            passed=new >= submission.challenge.threshold,
            previous_score=submission.score,
            previous_passed=submission.passed,
            finished_at=timezone.now(),
        )
    WorkerHeartbeat.objects.create(
        name="celery@gpu-worker-01.example.com:12345",
        host="gpu-worker-01.example.com",
        device="cuda:0",
        runner="sandbox",
        current_job=f"submission {best.pk}",
    )
    HealthAlert.objects.create(
        kind=HealthAlert.Kind.QUEUE_AGE, detail="the oldest upload has waited 700 s"
    )

    newcomer = User.objects.create_user("newcomer", "newcomer@example.com")
    Enrollment.objects.create(user=newcomer, semester=semester)
    from accounts.tokens import invitation_tokens

    uid = urlsafe_base64_encode(force_bytes(newcomer.pk))
    from django.contrib.auth.tokens import default_token_generator

    course = semester.course.slug
    shared = {
        "home": "/",
        "course": f"/courses/{course}/",
        "challenge": f"/challenges/{keypoints.slug}/",
        "board": f"/challenges/{keypoints.slug}/leaderboard/",
        "result": f"/submissions/{best.pk}/",
        "result-pictures": f"/submissions/{masks.pk}/",
        "result-charts": f"/submissions/{categories.pk}/",
        "profile": "/accounts/profile/",
        "password-change": reverse("password_change"),
    }
    return Site(
        student=student,
        staff=staff,
        anonymous={
            "home": "/",
            "sign-in": reverse("login"),
            "password-reset": reverse("password_reset"),
            "password-reset-done": reverse("password_reset_done"),
            "password-reset-confirm": reverse(
                "password_reset_confirm",
                args=[
                    urlsafe_base64_encode(force_bytes(student.pk)),
                    default_token_generator.make_token(student),
                ],
            ),
            "invitation": reverse(
                "invitation_accept", args=[uid, invitation_tokens.make_token(newcomer)]
            ),
            "password-reset-complete": reverse("password_reset_complete"),
            "invitation-done": reverse("invitation_done"),
            "board": f"/challenges/{keypoints.slug}/leaderboard/",
            "archive": reverse("course_archive", args=[course]),
        },
        student_pages={
            **shared,
            "submissions": reverse("submission_list"),
            "password-change-done": reverse("password_change_done"),
            "result-failed": f"/submissions/{failed.pk}/",
            "result-queued": f"/submissions/{queued.pk}/",
        },
        staff_pages={
            **shared,
            "grade-book": reverse("challenge_staff", args=[keypoints.slug]),
            "re-grade-report": reverse("regrade_report", args=[batch.pk]),
            "health": reverse("platform_health"),
        },
    )


@pytest.fixture
def site(semester: Semester) -> Site:
    return seed(semester)


@contextmanager
def signed_in_page(
    chromium: Browser, live_server: Any, language: str, user: User | None
) -> Iterator[Page]:
    # bypass_csp: axe-core is injected as a script of the test's own, which the site's
    # Content-Security-Policy (scripts from the site only) would otherwise refuse.
    context = chromium.new_context(
        bypass_csp=True, extra_http_headers={"Accept-Language": f"{language},en;q=0.5"}
    )
    cookies = [{"name": "django_language", "value": language, "url": live_server.url}]
    if user is not None:
        client = Client()
        client.force_login(user)
        session = client.cookies["sessionid"].value
        cookies.append({"name": "sessionid", "value": session, "url": live_server.url})
    context.add_cookies(cookies)  # type: ignore[arg-type]
    page = context.new_page()
    page.set_default_timeout(20_000)
    try:
        yield page
    finally:
        context.close()


def check_page(page: Page, url: str, language: str, name: str, width: int) -> list[str]:
    """Everything wrong with one page at one width, one line each."""
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(url, wait_until="load")
    # Folded parts (a chart's numbers, the staff's grading runs) are checked open.
    page.evaluate("document.querySelectorAll('details').forEach((d) => { d.open = true; })")
    problems = []
    if name in SHOWS and not page.locator(SHOWS[name]).count():
        problems.append(f"nothing matches {SHOWS[name]!r}")
    seen = page.evaluate(MEASURE)
    if seen["width"] > seen["screen"]:
        wide = ", ".join(page.evaluate(STICKING_OUT, seen["screen"]))
        problems.append(f"{seen['width']} px wide on a {seen['screen']} px screen: {wide}")
    if seen["lang"] != language:
        problems.append(f"<html lang={seen['lang']!r}>, not {language!r}")
    if language == "de" and name in GERMAN and GERMAN[name].lower() not in seen["text"].lower():
        problems.append(f"no {GERMAN[name]!r} on the German page")
    if name == "challenge" and width < 600 and page.locator("input[type=file]").count():
        for control in ("input[type=file]", "form[enctype] button[type=submit]"):
            box = page.locator(control).bounding_box()
            if box is None or box["height"] < THUMB_PX or box["x"] + box["width"] > width:
                problems.append(f"{control} at {box}: a thumb needs {THUMB_PX} px, on screen")
    silent = page.evaluate(SILENT)
    if silent:
        problems.append(f"live parts outside a polite live region: {', '.join(silent)}")
    page.add_script_tag(path=str(AXE))
    for v in page.evaluate(RUN_AXE):
        targets = ", ".join(v["targets"][:5])
        problems.append(f"{v['id']} ({v['impact']}): {v['help']} — {targets}")
    return problems


@pytest.mark.parametrize("language", ["en", "de"])
def test_its_pages_pass_axe_and_fit_a_phone(
    live_server: Any, chromium: Browser, site: Site, language: str
) -> None:
    assert AXE.exists(), f"{AXE} is missing: run `make install-dev` (npm ci)"
    problems: list[str] = []
    for where, user, pages in [
        ("signed out", None, site.anonymous),
        ("student", site.student, site.student_pages),
        ("staff", site.staff, site.staff_pages),
    ]:
        with signed_in_page(chromium, live_server, language, user) as page:
            for name, path in pages.items():
                for width in WIDTHS:
                    found = check_page(page, live_server.url + path, language, name, width)
                    problems += [f"{where}, {name} ({path}) at {width} px: {p}" for p in found]
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems)
