"""The admin's per-semester scope, through the real admin pages: a TA given ``is_staff`` and
every model permission (through a group, as a site would) reaches the rows of the semester
where they hold a TA seat and no other's: lists, object pages, the custom pages (reveal,
re-grade, roster, publish, cancel) and the actions; the grade-book permission and superusers
open every semester, and staff with neither a seat nor the permission see none."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, Permission, User
from django.core import mail
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.utils import timezone

from accounts.models import Invitation
from courses.models import Challenge, Course, Enrollment, Extension, Semester
from leaderboard.admin.scope import ScopedAdmin, ScopedInline, SiteWideAdmin, is_scoped
from submissions.models import GradingRun, RegradeBatch, Submission
from submissions.regrade import regrade_batch_start
from tests.platform.conftest import make_challenge, make_submission, make_user

#: the private score of semester B's result and its staff log: never on a page A's TA opens
PRIVATE_B = 271.828
LOG_B = "model stderr of semester B"
LOG_A = "model stderr of semester A"


@dataclass
class Term:
    """One semester's rows, each kind the admin lists."""

    course: Course
    semester: Semester
    challenge: Challenge
    enrollment: Enrollment
    submission: Submission
    run: GradingRun
    extension: Extension
    invitation: Invitation


def split_result(enrollment: Enrollment, challenge: Challenge, private: float) -> Submission:
    """A graded result with a public and a private part (before the reveal: private hidden)."""
    return make_submission(
        enrollment,
        challenge,
        created_at=timezone.now() - timedelta(hours=1),
        status=Submission.Status.GRADED,
        score=150.0,
        passed=True,
        metrics={
            "score": 150.0,
            "public": {"score": 120.0, "count": 4},
            "private": {"score": private, "count": 4},
        },
    )


def build_term(course: Course, semester: Semester, challenge: Challenge, name: str, log: str):
    challenge.reference_model.save("ref.pt2", ContentFile(b"reference model"))
    # A split whose results are held: revealing is what the reviewers did to another term.
    Challenge.objects.filter(pk=challenge.pk).update(public_fraction=0.5, hold_results=True)
    challenge.refresh_from_db()
    enrollment = Enrollment.objects.create(user=make_user(f"student-{name}"), semester=semester)
    submission = split_result(enrollment, challenge, PRIVATE_B if name == "b" else 99.5)
    run = GradingRun.objects.create(
        submission=submission, attempt=1, outcome=GradingRun.Outcome.GRADED, log=log
    )
    extension = Extension.objects.create(
        enrollment=enrollment, challenge=challenge, deadline=challenge.deadline
    )
    invitation = Invitation.objects.create(user=enrollment.user, semester=semester)
    return Term(course, semester, challenge, enrollment, submission, run, extension, invitation)


@pytest.fixture
def term_a(course, semester, challenge) -> Term:
    return build_term(course, semester, challenge, "a", LOG_A)


@pytest.fixture
def term_b(db) -> Term:
    course = Course.objects.create(slug="cv", title="Computer Vision")
    semester = Semester.objects.create(
        course=course, slug="ss2027", title="Summer 2027", starts_on="2027-04-01", is_current=True
    )
    challenge = make_challenge(semester, slug="pose-ss2027", title="Pose estimation")
    return build_term(course, semester, challenge, "b", LOG_B)


@pytest.fixture
def course_staff(db) -> Group:
    """Every model permission the site has, but the grade book's."""
    group = Group.objects.create(name="course staff")
    group.permissions.set(Permission.objects.exclude(codename="view_gradebook"))
    return group


@pytest.fixture
def scoped_ta(ta, course_staff, term_a, term_b) -> User:
    """The TA of semester A (the ``semester`` fixture), made staff with the group's permissions."""
    ta.is_staff = True
    ta.save()
    ta.groups.add(course_staff)
    return ta


def changelist(client, model: str, **query):
    response = client.get(f"/admin/{model}/", query)
    assert response.status_code == 200, model
    return response


def listed(response) -> set:
    return {row.pk for row in response.context["cl"].result_list}


def act(client, model: str, action: str, *pks, **extra):
    """Run a list action the way the admin posts it (with its confirmation's fields, if any)."""
    data = {"action": action, "_selected_action": [str(pk) for pk in pks], **extra}
    return client.post(f"/admin/{model}/", data, follow=True)


# --- lists ------------------------------------------------------------------------------------


def test_it_lists_only_the_semester_of_a_tas_seat(client, scoped_ta, term_a, term_b):
    client.force_login(scoped_ta)

    rows = {
        "submissions/submission": (term_a.submission, term_b.submission),
        "submissions/gradingrun": (term_a.run, term_b.run),
        "courses/challenge": (term_a.challenge, term_b.challenge),
        "courses/semester": (term_a.semester, term_b.semester),
        "courses/course": (term_a.course, term_b.course),
        "courses/enrollment": (term_a.enrollment, term_b.enrollment),
        "courses/extension": (term_a.extension, term_b.extension),
        "accounts/invitation": (term_a.invitation, term_b.invitation),
    }
    for model, (mine, theirs) in rows.items():
        response = changelist(client, model)
        page = response.content.decode()

        assert mine.pk in listed(response), model
        assert theirs.pk not in listed(response), model
        # Nor in the filters' choices: B's course, semester and challenge are not named.
        for name in ("Computer Vision", "Summer 2027", "Pose estimation", "pose-ss2027"):
            assert name not in page, (model, name)


def test_it_lists_another_semesters_regrades_to_no_ta(client, scoped_ta, staff, term_a, term_b):
    mine = regrade_batch_start(term_a.challenge, staff, "test set replaced")
    theirs = regrade_batch_start(term_b.challenge, staff, "test set replaced")
    client.force_login(scoped_ta)

    response = changelist(client, "submissions/regradebatch")
    progress = client.get(
        "/admin/submissions/regradebatch/progress/", {"id": [mine.pk, theirs.pk]}
    ).json()
    # B's challenge page links to its re-grades this way.
    filtered = changelist(
        client, "submissions/regradebatch", challenge__id__exact=theirs.challenge_id
    )

    assert listed(response) == {mine.pk}
    assert [batch["id"] for batch in progress["batches"]] == [mine.pk]
    assert theirs.pk not in listed(filtered)


def test_it_searches_within_the_scope(client, scoped_ta, term_a, term_b):
    client.force_login(scoped_ta)

    response = changelist(client, "submissions/submission", q=term_b.enrollment.handle)

    assert listed(response) == set()


def test_it_lists_a_tas_submissions_in_a_constant_number_of_queries(
    client, scoped_ta, term_a, term_b, django_assert_num_queries
):
    for _ in range(10):
        make_submission(term_a.enrollment, term_a.challenge)
    client.force_login(scoped_ta)

    # session, user, the user's and the group's permissions, the semester filter's choices,
    # the challenge filter's choices (each with the scope as a subquery), the filtered and the
    # total count, the page with enrolment, user and challenge, the date hierarchy's range and
    # its days: the scope adds no query of its own
    with django_assert_num_queries(11):
        response = client.get("/admin/submissions/submission/")

    assert len(listed(response)) == 11


# --- object pages -----------------------------------------------------------------------------


def test_it_answers_not_found_for_another_semesters_pages(client, scoped_ta, term_b):
    client.force_login(scoped_ta)

    for page in (
        f"submissions/submission/{term_b.submission.pk}/change/",
        f"submissions/gradingrun/{term_b.run.pk}/change/",
        f"courses/challenge/{term_b.challenge.pk}/change/",
        f"courses/semester/{term_b.semester.pk}/change/",
        f"courses/course/{term_b.course.pk}/change/",
        f"courses/enrollment/{term_b.enrollment.pk}/change/",
        f"courses/extension/{term_b.extension.pk}/change/",
        f"submissions/submission/{term_b.submission.pk}/history/",
        f"courses/challenge/{term_b.challenge.pk}/delete/",
    ):
        response = client.get(f"/admin/{page}", follow=True)
        text = response.content.decode()

        # The admin's answer for an object that does not exist: back to the index, saying so.
        assert response.redirect_chain == [("/admin/", 302)], page
        assert "doesn’t exist. Perhaps it was deleted?" in text, page
        assert LOG_B not in text and str(PRIVATE_B) not in text, page


def test_it_shows_a_ta_the_staff_log_and_private_part_of_their_own_semester(
    client, scoped_ta, term_a
):
    client.force_login(scoped_ta)

    submission = client.get(f"/admin/submissions/submission/{term_a.submission.pk}/change/")
    run = client.get(f"/admin/submissions/gradingrun/{term_a.run.pk}/change/")

    assert submission.status_code == run.status_code == 200
    assert "99.5" in submission.content.decode()
    assert LOG_A in submission.content.decode() and LOG_A in run.content.decode()


def test_it_does_not_delete_another_semesters_rows(client, scoped_ta, term_b):
    client.force_login(scoped_ta)

    client.post(f"/admin/courses/extension/{term_b.extension.pk}/delete/", {"post": "yes"})
    act(client, "courses/extension", "delete_selected", term_b.extension.pk, post="yes")

    assert Extension.objects.filter(pk=term_b.extension.pk).exists()


# --- custom pages and actions -----------------------------------------------------------------


def test_it_refuses_to_reveal_another_semesters_results(client, scoped_ta, term_a, term_b):
    client.force_login(scoped_ta)

    # Confirmed (students may still upload: the reveal asks first).
    confirm = {"post": "yes"}
    button = client.post(f"/admin/courses/challenge/{term_b.challenge.pk}/reveal/", confirm)
    act(client, "courses/challenge", "reveal_results", term_b.challenge.pk, **confirm)
    mine = client.post(f"/admin/courses/challenge/{term_a.challenge.pk}/reveal/", confirm)

    assert button.status_code == 404
    term_b.challenge.refresh_from_db()
    assert term_b.challenge.revealed_at is None
    assert mine.status_code == 302
    term_a.challenge.refresh_from_db()
    assert term_a.challenge.revealed_at is not None


def test_it_refuses_to_regrade_another_semester(client, scoped_ta, term_a, term_b):
    client.force_login(scoped_ta)
    confirm = {"post": "yes", "reason": "test set replaced"}

    button = client.post(f"/admin/courses/challenge/{term_b.challenge.pk}/regrade/", confirm)
    act(client, "courses/challenge", "regrade_challenge", term_b.challenge.pk, **confirm)
    act(client, "submissions/submission", "regrade_selected", term_b.submission.pk, **confirm)
    assert button.status_code == 404
    assert not RegradeBatch.objects.exists()

    act(client, "courses/challenge", "regrade_challenge", term_a.challenge.pk, **confirm)

    assert RegradeBatch.objects.get().challenge == term_a.challenge


def test_it_refuses_a_reference_check_of_another_semester(
    client, scoped_ta, term_a, term_b, sent, django_capture_on_commit_callbacks
):
    client.force_login(scoped_ta)

    with django_capture_on_commit_callbacks(execute=True):
        act(client, "courses/challenge", "check_reference", term_b.challenge.pk)
        act(client, "courses/challenge", "check_reference", term_a.challenge.pk)

    term_a.challenge.refresh_from_db()
    term_b.challenge.refresh_from_db()
    assert term_b.challenge.reference_check == {}
    assert term_a.challenge.reference_check["status"] == "queued"
    assert [message.args for message in sent] == [[term_a.challenge.pk]]


def complete_dry_run(challenge: Challenge, user: User) -> RegradeBatch:
    batch = regrade_batch_start(challenge, user, "test set replaced", dry_run=True)
    GradingRun.objects.filter(batch=batch).update(
        outcome=GradingRun.Outcome.GRADED, score=7.0, passed=True, finished_at=timezone.now()
    )
    RegradeBatch.objects.filter(pk=batch.pk).update(status=RegradeBatch.Status.COMPLETE)
    return batch


def test_it_refuses_to_publish_or_cancel_another_semesters_regrade(
    client, scoped_ta, staff, term_a, term_b
):
    theirs = complete_dry_run(term_b.challenge, staff)
    mine = complete_dry_run(term_a.challenge, staff)
    client.force_login(scoped_ta)

    publish = client.post(f"/admin/submissions/regradebatch/{theirs.pk}/publish/")
    cancel = client.post(f"/admin/submissions/regradebatch/{theirs.pk}/cancel/")
    page = client.get(f"/admin/submissions/regradebatch/{theirs.pk}/change/")
    published = client.post(f"/admin/submissions/regradebatch/{mine.pk}/publish/")

    assert publish.status_code == cancel.status_code == 404
    assert page.status_code == 302
    theirs.refresh_from_db()
    assert theirs.status == RegradeBatch.Status.COMPLETE
    term_b.submission.refresh_from_db()
    assert term_b.submission.score == 150.0
    assert published.status_code == 302
    mine.refresh_from_db()
    assert mine.status == RegradeBatch.Status.PUBLISHED


def test_it_refuses_another_semesters_invitations_roster_and_closing(
    client, scoped_ta, term_a, term_b
):
    Invitation.objects.all().delete()
    client.force_login(scoped_ta)

    act(client, "courses/semester", "invite", term_b.semester.pk)
    act(client, "courses/semester", "close", term_b.semester.pk)
    roster = client.post(
        f"/admin/courses/semester/{term_b.semester.pk}/import-roster/",
        {"roster": ContentFile(b"username,email\nmallory,m@example.com\n", name="r.csv")},
    )
    assert roster.status_code == 404
    assert not Invitation.objects.exists() and mail.outbox == []
    term_b.semester.refresh_from_db()
    assert not term_b.semester.closed
    assert not User.objects.filter(username="mallory").exists()

    act(client, "courses/semester", "invite", term_a.semester.pk)

    assert [m.to for m in mail.outbox] == [[term_a.enrollment.user.email]]


def test_it_refuses_an_extension_in_another_semester(client, scoped_ta, term_a, term_b):
    Extension.objects.all().delete()
    client.force_login(scoped_ta)
    deadline = timezone.now() + timedelta(days=30)
    form = {
        "deadline_0": deadline.strftime("%Y-%m-%d"),
        "deadline_1": "12:00:00",
        "extra_uploads": "2",
        "reason": "ill",
    }

    theirs = client.post(
        "/admin/courses/extension/add/",
        {**form, "enrollment": term_b.enrollment.pk, "challenge": term_b.challenge.pk},
    )
    mixed = client.post(
        "/admin/courses/extension/add/",
        {**form, "enrollment": term_a.enrollment.pk, "challenge": term_b.challenge.pk},
    )
    choices = client.get(
        "/admin/autocomplete/",
        {"app_label": "courses", "model_name": "extension", "field_name": "enrollment"},
    ).json()
    assert theirs.status_code == mixed.status_code == 200  # the form again, with its errors
    assert "Select a valid choice" in theirs.content.decode()
    assert not Extension.objects.exists()
    semester_a = Enrollment.objects.filter(semester=term_a.semester)
    assert {row["id"] for row in choices["results"]} == {str(e.pk) for e in semester_a}

    mine = client.post(
        "/admin/courses/extension/add/",
        {**form, "enrollment": term_a.enrollment.pk, "challenge": term_a.challenge.pk},
    )

    assert mine.status_code == 302
    assert Extension.objects.get().challenge == term_a.challenge


def test_it_gives_a_ta_no_seat_or_challenge_in_another_semester(client, scoped_ta, term_b):
    client.force_login(scoped_ta)

    seat = client.post(
        "/admin/courses/enrollment/add/",
        {
            "user": scoped_ta.pk,
            "semester": term_b.semester.pk,
            "role": "ta",
            "extensions-TOTAL_FORMS": "0",
            "extensions-INITIAL_FORMS": "0",
        },
    )
    challenge = client.post(
        "/admin/courses/challenge/add/",
        {"semester": term_b.semester.pk, "task": "keypoints", "slug": "planted", "title": "x"},
    )

    for response in (seat, challenge):
        assert response.status_code == 200  # the form again, with its errors
        assert "Select a valid choice" in str(response.context["adminform"].form.errors["semester"])
    assert not Enrollment.objects.filter(user=scoped_ta, semester=term_b.semester).exists()
    assert not Challenge.objects.filter(slug="planted").exists()


def test_it_lets_a_ta_choose_only_their_courses_hidden_test_sets(
    client, rf, scoped_ta, staff, term_a, term_b
):
    """Typed freely, a TA's data folder could name another course's hidden test set: their
    students' models would be graded on it and its figures shown to them."""
    Challenge.objects.filter(pk=term_b.challenge.pk).update(data_dir="cv/pose")
    earlier = Semester.objects.create(
        course=term_a.course, slug="ws2025", title="Winter 2025", starts_on="2025-10-01"
    )
    make_challenge(earlier, slug="keypoints-ws2025", data_dir="ws2025/keypoints")
    client.force_login(scoped_ta)
    page = client.get(f"/admin/courses/challenge/{term_a.challenge.pk}/change/").content.decode()
    request = rf.get("/admin/")
    request.user = scoped_ta
    form = admin.site._registry[Challenge].get_form(request, term_a.challenge, change=True)
    field = form.base_fields["data_dir"]

    # Their course's folders, this semester's and an earlier one's; never the other course's.
    assert sorted(value for value, _ in field.choices) == sorted(
        [term_a.challenge.data_dir, "ws2025/keypoints"]
    )
    assert f'<option value="{term_a.challenge.data_dir}" selected>' in page
    assert "cv/pose" not in page
    with pytest.raises(ValidationError, match="valid choice"):
        field.clean("cv/pose")
    # Staff who run every course type any folder, as before.
    request.user = staff
    form = admin.site._registry[Challenge].get_form(request, term_a.challenge, change=True)
    assert form.base_fields["data_dir"].clean("cv/pose") == "cv/pose"


def test_it_keeps_site_wide_pages_from_a_ta(client, scoped_ta, course_staff, term_a):
    client.force_login(scoped_ta)

    for page in (
        "auth/user/",
        f"auth/user/{scoped_ta.pk}/change/",
        "auth/group/",
        "submissions/apitoken/",
        "axes/accessattempt/",
    ):
        assert client.get(f"/admin/{page}").status_code == 403, page
    promote = client.post(
        f"/admin/auth/user/{scoped_ta.pk}/change/",
        {"username": "ta", "is_active": "on", "is_staff": "on", "is_superuser": "on"},
    )
    course = client.post(
        f"/admin/courses/course/{term_a.course.pk}/change/",
        {"slug": "renamed", "title": "Renamed", "timezone": "UTC"},
    )

    assert promote.status_code == course.status_code == 403
    scoped_ta.refresh_from_db()
    assert not scoped_ta.is_superuser
    term_a.course.refresh_from_db()
    assert term_a.course.slug == "i2dl"
    assert client.get(f"/admin/courses/course/{term_a.course.pk}/change/").status_code == 200


# --- who sees every semester, and who none ----------------------------------------------------


def gradebook_staff(group: Group) -> User:
    user = make_user("registrar", is_staff=True)
    user.groups.add(group)
    user.user_permissions.add(Permission.objects.get(codename="view_gradebook"))
    return user


@pytest.mark.parametrize("who", ["superuser", "grade-book permission"])
def test_it_opens_every_semester_to_the_grade_book_permission_and_superusers(
    client, staff, course_staff, term_a, term_b, who
):
    client.force_login(staff if who == "superuser" else gradebook_staff(course_staff))

    response = changelist(client, "submissions/submission")
    run = client.get(f"/admin/submissions/gradingrun/{term_b.run.pk}/change/")
    reveal = client.post(f"/admin/courses/challenge/{term_b.challenge.pk}/reveal/", {"post": "yes"})

    assert listed(response) == {term_a.submission.pk, term_b.submission.pk}
    assert LOG_B in run.content.decode()
    assert reveal.status_code == 302
    term_b.challenge.refresh_from_db()
    assert term_b.challenge.revealed_at is not None


def test_it_shows_staff_without_a_seat_or_the_permission_no_semester(
    client, course_staff, term_a, term_b
):
    clerk = make_user("clerk", is_staff=True)
    clerk.groups.add(course_staff)
    client.force_login(clerk)

    for model in ("submissions/submission", "courses/challenge", "courses/semester"):
        assert listed(changelist(client, model)) == set(), model
    response = client.get(f"/admin/submissions/submission/{term_a.submission.pk}/change/")
    assert response.status_code == 302


# --- no admin left out ------------------------------------------------------------------------


def test_every_admin_page_is_scoped_or_site_wide():
    unscoped = []
    for model, model_admin in admin.site._registry.items():
        if isinstance(model_admin, ScopedAdmin):
            ok = is_scoped(model) and all(
                issubclass(inline, ScopedInline) and is_scoped(inline.model)
                for inline in model_admin.inlines
            )
        else:
            ok = isinstance(model_admin, SiteWideAdmin) and bool(model_admin.site_wide_because)
        if not ok:
            unscoped.append(model._meta.label)

    assert unscoped == []
