"""The demo course behind ``manage.py seed_demo``: safe to run again, it only adds what is missing.

Hidden test sets are synthesised by ``eval_data``, the demo models trained by
``eval_data.demo_models``. Other students' submissions are written straight into the database as
graded (their runs say "seeded"), so the boards look alive without running the grader; their files
are copies of the demo models, so staff can re-grade them for real.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from courses.models import Challenge, Course, Enrollment, Semester
from grader import __version__ as grader_version
from grader.kinds import get_kind, kind_names
from submissions.models import GradingRun, Submission

COURSE_SLUG = "i2dl"
COURSE_TITLE = "Introduction to Deep Learning"
COURSE_TZ = "Europe/Berlin"
#: hidden test set size per kind: a few seconds to grade on a CPU. The input size decides it:
#: 200 small images take as long as 60 segmentation scenes of 240 x 240.
SAMPLE_PIXELS = 200 * 96 * 96

#: students with no submissions of their own: automated checks rely on these two
CLEAN_STUDENTS = ("demo", "demo2")
#: students whose pre-graded submissions make the current boards look alive
BUSY_STUDENTS = ("ada", "alan", "grace", "linus", "margaret", "tim")
#: students of the earlier semester
EARLIER_STUDENTS = ("barbara", "edsger", "ken", "grace")


@dataclass(frozen=True)
class SemesterSpec:
    slug: str
    title: str
    starts_on: date


def semester_of(day: date) -> SemesterSpec:
    """German university terms: summer April to September, winter October to March."""
    if 4 <= day.month <= 9:
        return SemesterSpec(f"ss{day.year}", f"Summer {day.year}", date(day.year, 4, 1))
    year = day.year if day.month >= 10 else day.year - 1
    return SemesterSpec(f"ws{year}", f"Winter {year}/{(year + 1) % 100:02d}", date(year, 10, 1))


def end_of_day(day: date, zone: ZoneInfo) -> datetime:
    """23:59:59 on ``day`` in ``zone``, as the course writes its deadlines."""
    return datetime.combine(day, time(23, 59, 59), tzinfo=zone)


class DemoSeeder:
    def __init__(self, say: Callable[[str], None] = print) -> None:
        self.say = say
        self.zone = ZoneInfo(COURSE_TZ)
        self.today = timezone.now().astimezone(self.zone).date()

    @staticmethod
    def samples(task: str) -> int:
        """How many hidden test images the demo synthesises for a kind."""
        pixels = math.prod(get_kind(task).input_shape[1:])
        return max(20, min(400, SAMPLE_PIXELS // pixels))

    def run(self, *, build_models: bool = True) -> None:
        course = self.course()
        current, earlier = self.semesters(course)
        challenges = {current.pk: self.challenges(current, weeks_ahead=True)}
        challenges[earlier.pk] = self.challenges(earlier, weeks_ahead=False)
        for semester in (current, earlier):
            for challenge in challenges[semester.pk]:
                self.hidden_data(challenge, seed=1 if semester == current else 2)
                self.public_samples(challenge, seed=1 if semester == current else 2)
        models = self.demo_models() if build_models else {}
        self.users(current, earlier)
        for semester, names in ((current, BUSY_STUDENTS), (earlier, EARLIER_STUDENTS)):
            for challenge in challenges[semester.pk]:
                for name in names:
                    self.seeded_submissions(challenge, name, models)
        self.summary(challenges[current.pk], models)

    # --- rows -------------------------------------------------------------------------------

    def course(self) -> Course:
        course, created = Course.objects.get_or_create(
            slug=COURSE_SLUG, defaults={"title": COURSE_TITLE, "timezone": COURSE_TZ}
        )
        self.say(f"{'created' if created else 'found'} course {course.title} ({course.timezone})")
        return course

    def semesters(self, course: Course) -> tuple[Semester, Semester]:
        now_spec = semester_of(self.today)
        before_spec = semester_of(now_spec.starts_on - timedelta(days=1))
        with transaction.atomic():
            # At most one current semester per course: a re-run in a new term moves the flag.
            course.semesters.exclude(slug=now_spec.slug).update(is_current=False)
            current = self._semester(course, now_spec, current=True)
            earlier = self._semester(course, before_spec, current=False)
        return current, earlier

    def _semester(self, course: Course, spec: SemesterSpec, *, current: bool) -> Semester:
        semester, created = Semester.objects.update_or_create(
            course=course,
            slug=spec.slug,
            defaults={"is_current": current, "closed": not current},
            create_defaults={
                "title": spec.title,
                "starts_on": spec.starts_on,
                "is_current": current,
                "closed": not current,
            },
        )
        state = "current" if current else "earlier, closed"
        self.say(f"{'created' if created else 'found'} semester {semester.title} ({state})")
        return semester

    def challenges(self, semester: Semester, *, weeks_ahead: bool) -> list[Challenge]:
        result = []
        for offset, task in enumerate(kind_names()):
            kind = get_kind(task)
            if weeks_ahead:
                slug = f"{COURSE_SLUG}-{task}"
                deadline = end_of_day(self.today + timedelta(weeks=6 + 2 * offset), self.zone)
            else:
                slug = f"{COURSE_SLUG}-{task}-{semester.slug}"
                deadline = end_of_day(
                    semester.starts_on + timedelta(weeks=14 + 2 * offset), self.zone
                )
            challenge, created = Challenge.objects.get_or_create(
                slug=slug,
                defaults={
                    **Challenge.defaults_for(task),
                    "semester": semester,
                    "task": task,
                    "title": kind.title,
                    "deadline": deadline,
                    "threshold": kind.default_threshold,
                    "data_dir": f"{semester.slug}/{task}",
                    "time_limit_seconds": 120,
                },
            )
            if weeks_ahead and challenge.deadline <= timezone.now() + timedelta(days=7):
                # A demo database from long ago: keep the current challenges open.
                challenge.deadline = deadline
                challenge.save(update_fields=["deadline"])
            self.say(
                f"{'created' if created else 'found'} challenge {challenge.slug}"
                f" (deadline {challenge.deadline.astimezone(self.zone):%Y-%m-%d %H:%M:%S %Z})"
            )
            result.append(challenge)
        return result

    def hidden_data(self, challenge: Challenge, *, seed: int) -> None:
        from eval_data import get_kind
        from eval_data.manifest import write_manifest

        root = Path(challenge.data_path())
        if (root / "manifest.json").is_file():
            self.say(f"hidden data for {challenge.slug} is at {root}")
            return
        count = self.samples(challenge.task)
        self.say(f"synthesising {count} {challenge.task} test images into {root} ...")
        root.mkdir(parents=True, exist_ok=True)
        get_kind(challenge.task).synth(root, count, seed)
        write_manifest(root, challenge.task)

    def public_samples(self, challenge: Challenge, *, seed: int) -> None:
        """A few public images beside the hidden set, for the result page's predicted masks."""
        from eval_data.public import public_dir, synth_public

        if not challenge.kind.public_samples:
            return
        hidden = Path(challenge.data_path())
        if public_dir(hidden).is_dir():
            return
        folder = synth_public(hidden, challenge.task, seed)
        self.say(f"synthesised public sample images for {challenge.slug} into {folder}")

    def demo_models(self) -> dict[str, Path]:
        out = Path(settings.GRADER_DEMO_MODELS)
        names = [f"{task}_{end}" for task in kind_names() for end in ("pass", "fail")]
        paths = {name: out / f"{name}.pt2" for name in names}
        if all(path.is_file() for path in paths.values()):
            self.say(f"demo models are in {out}")
            return paths
        self.say(f"training the demo models into {out} (under a minute) ...")
        # Imported here: it imports torch, which nothing else in the web process needs.
        from eval_data.demo_models import build_demo_models

        built = build_demo_models(out, seed=0)
        return {name: built[name] for name in paths}

    def users(self, current: Semester, earlier: Semester) -> None:
        self._user("staff", staff=True)
        for name in CLEAN_STUDENTS + BUSY_STUDENTS:
            self._enroll(self._user(name), current, Enrollment.Role.STUDENT)
        self._enroll(self._user("ta"), current, Enrollment.Role.TA)
        for name in EARLIER_STUDENTS:
            self._enroll(self._user(name), earlier, Enrollment.Role.STUDENT)

    def _user(self, name: str, *, staff: bool = False) -> User:
        User = get_user_model()
        user, created = User.objects.get_or_create(
            username=name, defaults={"email": f"{name}@example.com"}
        )
        # Demo only: the password is the username (refused outside DEBUG unless asked for).
        user.set_password(name)
        user.is_staff = user.is_superuser = staff
        user.save()
        if created:
            self.say(f"created user {name}{' (staff)' if staff else ''}")
        return user

    def _enroll(self, user: User, semester: Semester, role: str) -> None:
        Enrollment.objects.get_or_create(user=user, semester=semester, defaults={"role": role})

    # --- pre-graded submissions -------------------------------------------------------------

    def seeded_submissions(
        self, challenge: Challenge, username: str, models: dict[str, Path]
    ) -> None:
        enrollment = Enrollment.objects.get(user__username=username, semester=challenge.semester)
        if Submission.objects.filter(enrollment=enrollment, challenge=challenge).exists():
            return
        rng = random.Random(f"{username}:{challenge.slug}")
        manifest = Path(challenge.data_path()) / "manifest.json"
        dataset_hash = (
            json.loads(manifest.read_text())["dataset_hash"] if manifest.is_file() else ""
        )
        end = min(timezone.now(), challenge.deadline) - timedelta(hours=1)
        for _ in range(rng.randint(1, 3)):
            created = end - timedelta(minutes=rng.randint(10, 60 * 24 * 20))
            metrics = challenge.kind.demo_metrics(rng, self.samples(challenge.task))
            score = float(metrics[challenge.score_key])
            passed = score >= challenge.threshold
            model = models.get(f"{challenge.task}_{'pass' if passed else 'fail'}")
            content = model.read_bytes() if model and model.is_file() else b"seeded: no file"
            metrics.update(
                passed=passed,
                threshold=challenge.threshold,
                task=challenge.task,
                format="pt2",
                dataset_hash=dataset_hash,
                grader_version=grader_version,
            )
            started, finished = created + timedelta(seconds=2), created + timedelta(seconds=5)
            with transaction.atomic():
                submission = Submission(
                    id=uuid.uuid4(),
                    enrollment=enrollment,
                    challenge=challenge,
                    original_name=f"{challenge.task}.pt2",
                    sha256=hashlib.sha256(content).hexdigest(),
                    size=len(content),
                    format="pt2",
                    status=Submission.Status.GRADED,
                    score=score,
                    passed=passed,
                    metrics=metrics,
                    created_at=created,
                    queued_at=created,
                    started_at=started,
                    finished_at=finished,
                    attempts=1,
                )
                submission.file.save("upload.bin", ContentFile(content), save=False)
                submission.save(force_insert=True)
                GradingRun.objects.create(
                    submission=submission,
                    attempt=1,
                    worker_host="seed_demo",
                    device="cpu",
                    grader_version=grader_version,
                    runner="seeded",
                    dataset_hash=dataset_hash,
                    started_at=started,
                    finished_at=finished,
                    outcome=GradingRun.Outcome.GRADED,
                    score=score,
                    metrics=metrics,
                    log="seeded by manage.py seed_demo: plausible figures, not a real grading",
                )
        self.say(f"seeded submissions of {enrollment.handle} ({username}) to {challenge.slug}")

    # --- what to do next --------------------------------------------------------------------

    def summary(self, challenges: list[Challenge], models: dict[str, Path]) -> None:
        self.say("")
        self.say("Demo ready. Sign in at http://127.0.0.1:8000/accounts/login/ with")
        self.say("  demo / demo      (a student with no submissions; also demo2 / demo2)")
        self.say("  ta / ta          (a teaching assistant of the current semester)")
        self.say("  staff / staff    (site staff; the admin is at /admin/)")
        self.say("Other students (password = username): " + ", ".join(BUSY_STUDENTS))
        self.say("Challenges: " + ", ".join(c.slug for c in challenges))
        if models:
            self.say("Demo models to upload:")
            for path in sorted(models.values()):
                self.say(f"  {path}")
        self.say("API token of a user: python manage.py create_token demo")
