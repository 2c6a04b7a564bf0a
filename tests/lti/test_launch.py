"""LTI 1.3 launches against a real platform process (its key set fetched over HTTP): who is
signed in, which seat, which challenge, and every refusal (4xx, a page that says why, nobody
signed in)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from accounts.models import ExternalIdentity
from courses.models import Enrollment, Semester
from lti.models import ContextSemester, Placement
from tests.lti.conftest import challenge_in, launch, post_launch, signed_in_user_id, start
from tests.lti.peer import PlatformPeer

pytestmark = pytest.mark.django_db


def test_a_learner_is_signed_in_enrolled_and_sent_to_the_challenge(
    client: Client, platform: PlatformPeer, registered: dict[str, str], challenge: Any
) -> None:
    answer = launch(
        client, platform, registered, sub="s-1", email="Ada@Example.org",
        custom={"challenge": challenge.slug}, resource_link="link-7",
    )  # fmt: skip
    assert answer.status_code == 302
    assert answer["Location"] == f"/challenges/{challenge.slug}/"
    user = User.objects.get(pk=signed_in_user_id(client))
    assert user.email == "Ada@Example.org"
    assert not user.has_usable_password()
    enrollment = Enrollment.objects.get(user=user, semester=challenge.semester)
    assert enrollment.role == Enrollment.Role.STUDENT
    assert enrollment.handle.startswith("u") and "ada" not in enrollment.handle.lower()
    identity = ExternalIdentity.objects.get(user=user)
    assert (identity.issuer, identity.subject) == (platform.base, "s-1")
    assert ContextSemester.objects.get().semester == challenge.semester
    assert Placement.objects.get().challenge == challenge
    assert client.get(answer["Location"]).status_code == 200


@pytest.mark.parametrize("role", ["Instructor", "TeachingAssistant"])
def test_instructors_and_teaching_assistants_get_a_ta_seat(
    client: Client, platform: PlatformPeer, registered: dict[str, str], challenge: Any, role: str
) -> None:
    answer = launch(
        client, platform, registered, sub=f"t-{role}", email=f"{role}@example.org",
        roles=[role], custom={"challenge": challenge.slug},
    )  # fmt: skip
    assert answer.status_code == 302
    enrollment = Enrollment.objects.get(user_id=signed_in_user_id(client))
    assert enrollment.role == Enrollment.Role.TA


def test_a_roster_account_is_linked_by_email_case_insensitively_then_by_subject(
    client: Client, platform: PlatformPeer, registered: dict[str, str], challenge: Any
) -> None:
    grace = User.objects.create_user("grace", "grace.hopper@example.org", "pw")
    Enrollment.objects.create(user=grace, semester=challenge.semester)
    answer = launch(
        client, platform, registered, sub="g-1", email="GRACE.Hopper@example.org",
        custom={"challenge": challenge.slug},
    )  # fmt: skip
    assert answer.status_code == 302
    assert int(signed_in_user_id(client)) == grace.pk
    assert ExternalIdentity.objects.get(subject="g-1").method == ExternalIdentity.Method.EMAIL
    # The link counts from now on, whatever email the LMS sends.
    other = Client()
    answer = launch(
        other, platform, registered, sub="g-1", email="someone.else@example.org",
        custom={"challenge": challenge.slug},
    )  # fmt: skip
    assert int(signed_in_user_id(other)) == grace.pk
    assert Enrollment.objects.filter(user=grace).count() == 1


def test_a_staff_account_is_never_signed_in_by_email_alone(
    client: Client, platform: PlatformPeer, registered: dict[str, str], challenge: Any
) -> None:
    User.objects.create_user("boss", "boss@example.org", "pw", is_staff=True)
    answer = launch(
        client, platform, registered, sub="b-1", email="boss@example.org",
        roles=["Instructor"], custom={"challenge": challenge.slug},
    )  # fmt: skip
    assert answer.status_code == 403
    assert "staff account" in answer.content.decode()
    assert signed_in_user_id(client) is None
    assert not ExternalIdentity.objects.exists()
    assert not Enrollment.objects.exists()
    # Signed in with the password in this browser, the same launch links the LMS account once;
    # from then on the LMS signs them in.
    boss = User.objects.get(username="boss")
    client.force_login(boss)
    answer = launch(
        client, platform, registered, sub="b-1", email="BOSS@example.org",
        roles=["Instructor"], custom={"challenge": challenge.slug},
    )  # fmt: skip
    assert answer.status_code == 302 and int(signed_in_user_id(client)) == boss.pk
    assert ExternalIdentity.objects.get().method == ExternalIdentity.Method.SIGNED_IN
    fresh = Client()
    launch(fresh, platform, registered, sub="b-1", custom={"challenge": challenge.slug})
    assert int(signed_in_user_id(fresh)) == boss.pk
    # Someone else signed in here gets no staff account's link by launching with its email.
    intruder = Client()
    intruder.force_login(User.objects.create_user("eve", "eve@example.org", "pw"))
    User.objects.create_user("boss2", "boss2@example.org", "pw", is_staff=True)
    answer = launch(
        intruder, platform, registered, sub="b-2", email="boss2@example.org",
        custom={"challenge": challenge.slug},
    )  # fmt: skip
    assert answer.status_code == 403
    assert not ExternalIdentity.objects.filter(subject="b-2").exists()


def test_a_new_account_never_takes_an_existing_username(
    client: Client, platform: PlatformPeer, registered: dict[str, str], challenge: Any
) -> None:
    taken = User.objects.create_user("new@example.org", "", "pw")
    answer = launch(
        client, platform, registered, sub="n-1", email="New@example.org", name="admin",
        custom={"challenge": challenge.slug},
    )  # fmt: skip
    assert answer.status_code == 302
    user = User.objects.get(pk=signed_in_user_id(client))
    assert user.pk != taken.pk and user.username != taken.username
    # Without an email the LMS still vouches for its member: an account with a name of its own.
    other = Client()
    launch(other, platform, registered, sub="n-2", custom={"challenge": challenge.slug})
    nameless = User.objects.get(pk=signed_in_user_id(other))
    assert nameless.username.startswith("lms-") and nameless.email == ""


def test_a_launch_without_a_challenge(
    client: Client, platform: PlatformPeer, registered: dict[str, str], challenge: Any
) -> None:
    # Before any placement names a challenge, a student is told so; an instructor picks one.
    answer = launch(client, platform, registered, sub="x-1", email="x1@example.org")
    assert answer.status_code == 200
    assert "opens no challenge yet" in answer.content.decode()
    teacher = Client()
    answer = launch(
        teacher, platform, registered, sub="t-9", email="t9@example.org", roles=["Instructor"],
        resource_link="link-2",
    )  # fmt: skip
    assert answer["Location"] == "/lti/pick/"
    page = teacher.get("/lti/pick/")
    assert challenge.title in page.content.decode()
    chosen = teacher.post("/lti/pick/", {"challenge": challenge.slug})
    assert chosen["Location"] == f"/challenges/{challenge.slug}/"
    assert Placement.objects.get(resource_link__id_on_platform="link-2").challenge == challenge
    # The link now opens the challenge, and the course is linked: students get its page.
    student = Client()
    answer = launch(student, platform, registered, sub="x-2", resource_link="link-2")
    assert answer["Location"] == f"/challenges/{challenge.slug}/"
    student = Client()
    answer = launch(student, platform, registered, sub="x-3", resource_link="link-3")
    assert answer["Location"] == f"/courses/{challenge.semester.course.slug}/"


def test_the_first_launch_links_the_lms_course_to_one_semester(
    client: Client, platform: PlatformPeer, registered: dict[str, str], challenge: Any
) -> None:
    later = Semester.objects.create(
        course=challenge.semester.course, slug="ss2027", title="Summer 2027", starts_on="2027-04-01"
    )
    elsewhere = challenge_in(later, "keypoints-ss2027")
    launch(client, platform, registered, sub="l-1", custom={"challenge": challenge.slug})
    other = Client()
    answer = launch(other, platform, registered, sub="l-2", custom={"challenge": elsewhere.slug})
    assert answer.status_code == 409
    assert "is linked to" in answer.content.decode()
    assert signed_in_user_id(other) is None
    # Staff move the link in the admin; then the other semester's challenge opens.
    ContextSemester.objects.update(semester=later)
    answer = launch(other, platform, registered, sub="l-2", custom={"challenge": elsewhere.slug})
    assert answer.status_code == 302


REFUSALS = [
    ({"sign_with_other_key": True}, 403, "signature"),
    ({"issuer": "https://lms.elsewhere.example"}, 403, "not registered"),
    ({"client_id": "someone-else"}, 403, "not registered"),
    ({"deployment_id": "deployment-unknown"}, 403, "deployment"),
    ({"expired": True}, 401, "expired"),
]


@pytest.mark.parametrize(("broken", "status", "says"), REFUSALS, ids=lambda v: str(v)[:24])
def test_a_broken_id_token_is_refused_with_a_page_that_says_why(
    client: Client,
    platform: PlatformPeer,
    registered: dict[str, str],
    challenge: Any,
    broken: dict[str, Any],
    status: int,
    says: str,
) -> None:
    answer = launch(
        client, platform, registered, sub="r-1", email="r1@example.org",
        custom={"challenge": challenge.slug}, **broken,
    )  # fmt: skip
    assert answer.status_code == status
    page = answer.content.decode()
    assert says in page and "You have not been signed in" in page
    assert signed_in_user_id(client) is None
    assert not User.objects.exists() and not Enrollment.objects.exists()


def test_a_replayed_id_token_is_refused(
    client: Client, platform: PlatformPeer, registered: dict[str, str], challenge: Any
) -> None:
    form = start(client, platform, registered, sub="p-1", custom={"challenge": challenge.slug})
    assert post_launch(client, form).status_code == 302
    # Someone who copied the form's fields posts them again, from another browser.
    attacker = Client()
    answer = post_launch(attacker, form)
    assert answer.status_code == 400
    assert "used before" in answer.content.decode()
    assert signed_in_user_id(attacker) is None
    # ... or from the same one, signed out.
    client.logout()
    answer = post_launch(client, form)
    assert answer.status_code == 400
    assert signed_in_user_id(client) is None


def test_a_replayed_state_is_refused(
    client: Client, platform: PlatformPeer, registered: dict[str, str], challenge: Any
) -> None:
    first = start(client, platform, registered, sub="q-1", custom={"challenge": challenge.slug})
    assert post_launch(client, first).status_code == 302
    client.logout()
    second = start(client, platform, registered, sub="q-2", custom={"challenge": challenge.slug})
    answer = post_launch(client, {"id_token": second["id_token"], "state": first["state"]})
    assert answer.status_code == 400
    assert signed_in_user_id(client) is None
    assert not User.objects.filter(external_identities__subject="q-2").exists()


def test_a_launch_that_did_not_start_here_is_refused(
    client: Client, platform: PlatformPeer, registered: dict[str, str], challenge: Any
) -> None:
    form = start(Client(), platform, registered, sub="z-1", custom={"challenge": challenge.slug})
    answer = post_launch(client, {"id_token": form["id_token"], "state": "state-forged"})
    assert answer.status_code == 400
    assert "new window" in answer.content.decode()
    assert signed_in_user_id(client) is None
    assert client.post("/lti/launch/", {"id_token": "not.a.jwt", "state": "x"}).status_code == 400
