"""Grade books, pass lists, re-grade reports and staff logs need ``courses.view_gradebook`` (or
being a TA of the semester): ``is_staff`` alone, which only opens the admin, is not enough."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission

from courses.models import Enrollment
from submissions.models import GradingRun, RegradeBatch
from tests.platform.conftest import graded, make_challenge, make_user

SECRET_LOG = "staff-only log line"


@pytest.fixture
def pages(enrollment, challenge):
    submission = graded(enrollment, challenge, 2.0)
    GradingRun.objects.create(submission=submission, attempt=1, log=SECRET_LOG)
    batch = RegradeBatch.objects.create(challenge=challenge, reason="test", total=0)
    return {
        "gradebook": f"/challenges/{challenge.slug}/staff/",
        "passes": f"/challenges/{challenge.slug}/staff/passes.csv",
        "regrade": f"/staff/regrades/{batch.pk}/",
        "regrade_csv": f"/staff/regrades/{batch.pk}/?format=csv",
        "result": f"/submissions/{submission.pk}/",
    }


def clerk_with(*codenames: str):
    clerk = make_user("clerk", is_staff=True)
    for codename in codenames:
        clerk.user_permissions.add(Permission.objects.get(codename=codename))
    return clerk


def sees(client, pages) -> dict[str, bool]:
    seen = {}
    for name, url in pages.items():
        response = client.get(url)
        seen[name] = response.status_code == 200 and (
            name != "result" or SECRET_LOG in response.content.decode()
        )
    return seen


def test_it_refuses_staff_without_the_permission(client, pages):
    client.force_login(clerk_with("view_submission", "change_challenge"))

    assert sees(client, pages) == dict.fromkeys(pages, False)


def test_it_opens_every_grade_book_to_staff_with_the_permission(client, pages):
    client.force_login(clerk_with("view_gradebook"))

    assert sees(client, pages) == dict.fromkeys(pages, True)


def test_it_grants_the_permission_through_a_group(client, pages):
    clerk = make_user("clerk", is_staff=True)
    group = Group.objects.create(name="lecturers")
    group.permissions.add(Permission.objects.get(codename="view_gradebook"))
    clerk.groups.add(group)
    client.force_login(clerk)

    assert sees(client, pages) == dict.fromkeys(pages, True)


def test_superusers_keep_everything(client, staff, pages):
    client.force_login(staff)

    assert sees(client, pages) == dict.fromkeys(pages, True)


def test_a_ta_sees_their_own_semester_only(client, ta, pages, earlier_semester):
    client.force_login(ta)
    other = make_challenge(earlier_semester, slug="older")

    assert sees(client, pages) == dict.fromkeys(pages, True)
    assert client.get(f"/challenges/{other.slug}/staff/").status_code == 404


def test_a_ta_of_another_semester_sees_nothing(client, pages, earlier_semester):
    ta = make_user("oldta")
    Enrollment.objects.create(user=ta, semester=earlier_semester, role=Enrollment.Role.TA)
    client.force_login(ta)

    assert sees(client, pages) == dict.fromkeys(pages, False)
