"""The LTI Advantage services against the real platform process, which fetches the tool's key
set from the live server to issue its tokens: the roster (NRPS, several pages), grade passback
(AGS: the line item, the exact score), key rotation, and failures on the health page."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
import requests
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.db import transaction
from django.test import Client
from django.utils import timezone
from lti_tool.models import LtiMembership

from courses.models import Challenge, Enrollment
from lti import grades
from lti.models import ContextSemester, Passback
from submissions.standings import challenge_reveal
from tests.lti.conftest import challenge_in, graded_upload, launch, register, signed_in_user_id
from tests.lti.peer import PlatformPeer

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def site(live_server: Any, platform: PlatformPeer) -> dict[str, str]:
    return register(platform, live_server.url)


def member(sub: str, role: str, email: str = "", status: str = "Active") -> dict[str, Any]:
    roles = {
        "Learner": ["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"],
        "Instructor": ["http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"],
        "TeachingAssistant": [
            "http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant"
        ],
    }[role]
    row: dict[str, Any] = {"user_id": sub, "roles": roles, "status": status, "name": sub}
    if email:
        row["email"] = email
    return row


def command(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=out)
    return out.getvalue()


def test_the_roster_sync_reads_every_page_and_keeps_those_who_left(
    client: Client, platform: PlatformPeer, site: dict[str, str], challenge: Any
) -> None:
    ann = User.objects.create_user("ann", "Ann@Example.org", "pw")
    launch(
        client, platform, site, sub="teacher", email="teacher@example.org",
        roles=["Instructor"], custom={"challenge": challenge.slug},
    )  # fmt: skip
    everyone = [
        member("teacher", "Instructor", "teacher@example.org"),
        member("ann-lms", "Learner", "ann@example.org"),
        member("bob-lms", "Learner", "bob@example.org"),
        member("cy-lms", "Learner"),
        member("dee-lms", "TeachingAssistant", "dee@example.org"),
    ]
    platform.configure(members={"course-1": everyone}, page_size=2)
    before = platform.state()["nrps_pages"]
    out = command("lti_sync_roster", "--semester", "i2dl/ws2026")
    assert platform.state()["nrps_pages"] - before == 3  # 5 members, 2 a page
    assert "5 member(s) listed" in out
    assert "3 account(s) created, 1 linked by email" in out
    assert "3 student(s) enrolled, 1 TA seat(s) given, 0 marked inactive" in out
    seats = dict(
        Enrollment.objects.filter(semester=challenge.semester).values_list(
            "user__external_identities__subject", "role"
        )
    )
    assert seats == {
        "teacher": "ta", "ann-lms": "student", "bob-lms": "student", "cy-lms": "student",
        "dee-lms": "ta",
    }  # fmt: skip
    assert ann.external_identities.get().subject == "ann-lms"

    # Bob left the LMS course: marked inactive in the roster, his enrolment (results) kept.
    platform.configure(members={"course-1": [m for m in everyone if m["user_id"] != "bob-lms"]})
    out = command("lti_sync_roster")
    assert "1 marked inactive" in out and "0 account(s) created" in out
    assert not LtiMembership.objects.get(user__sub="bob-lms").is_active
    assert LtiMembership.objects.get(user__sub="ann-lms").is_active
    assert Enrollment.objects.filter(user__external_identities__subject="bob-lms").exists()


def test_a_counted_result_reaches_the_line_item_once_with_the_exact_score(
    client: Client, platform: PlatformPeer, site: dict[str, str], challenge: Any
) -> None:
    launch(
        client, platform, site, sub="stud-1", email="stud1@example.org",
        custom={"challenge": challenge.slug}, resource_link="link-5",
    )  # fmt: skip
    enrollment = Enrollment.objects.get(user_id=signed_in_user_id(client))
    upload = graded_upload(enrollment, challenge, 540.8321)
    before = len(platform.state()["scores"])
    report = grades.push_score(enrollment.pk, challenge.pk)
    assert report.sent == 1
    state = platform.state()
    [item] = state["line_items"]["course-1"]
    assert {k: item[k] for k in ("label", "tag", "resourceLinkId", "scoreMaximum")} == {
        "label": challenge.title,
        "tag": challenge.slug,
        "resourceLinkId": "link-5",
        "scoreMaximum": 1,
    }
    [sent] = state["scores"][before:]
    assert sent["line_item"] == item["id"]
    assert sent["content_type"] == "application/vnd.ims.lis.v1.score+json"
    assert sent["score"] == {
        "scoreGiven": 1,
        "scoreMaximum": 1,
        "comment": "score 540.83",
        "activityProgress": "Completed",
        "gradingProgress": "FullyGraded",
        "userId": "stud-1",
        "timestamp": upload.finished_at.isoformat(),
    }
    # Idempotent: the same result is not posted again; a better one is, to the same line item.
    assert grades.push_score(enrollment.pk, challenge.pk).unchanged == 1
    graded_upload(enrollment, challenge, 800.0)
    assert grades.push_score(enrollment.pk, challenge.pk).sent == 1
    state = platform.state()
    assert len(state["line_items"]["course-1"]) == 1
    assert [s["score"]["comment"] for s in state["scores"][before:]] == [
        "score 540.83",
        "score 800.00",
    ]
    # lti_push_grades re-sends everything.
    assert "1 score(s) sent" in command("lti_push_grades", "--challenge", challenge.slug)
    assert len(platform.state()["scores"]) == before + 3


def test_a_private_result_is_sent_from_the_reveal_on(
    client: Client, platform: PlatformPeer, site: dict[str, str], semester: Any
) -> None:
    split = challenge_in(semester, "keypoints-split", public_fraction=0.5)
    launch(client, platform, site, sub="stud-2", custom={"challenge": split.slug})
    enrollment = Enrollment.objects.get(user_id=signed_in_user_id(client))
    graded_upload(
        enrollment, split, 300.0,
        metrics={"score": 300.0, "public": {"score": 320.0}, "private": {"score": 90.0}},
    )  # fmt: skip
    before = len(platform.state()["scores"])
    assert grades.push_score(enrollment.pk, split.pk).not_shown == 1
    # The deadline passes, staff hold the results back: still nothing the student may see.
    Challenge.objects.filter(pk=split.pk).update(
        deadline=timezone.now() - timedelta(hours=1), hold_results=True
    )
    split.refresh_from_db()
    assert grades.push_revealed().sent == 0
    assert len(platform.state()["scores"]) == before
    challenge_reveal(split)
    assert grades.push_challenge(split).sent == 1
    [sent] = platform.state()["scores"][before:]
    assert sent["score"]["scoreGiven"] == 0 and sent["score"]["comment"] == "score 90.00"
    # The hourly push finds it sent already.
    assert grades.push_revealed().unchanged == 1


def test_a_failed_passback_shows_on_the_health_page_until_sent(
    client: Client, platform: PlatformPeer, site: dict[str, str], challenge: Any
) -> None:
    launch(client, platform, site, sub="stud-3", custom={"challenge": challenge.slug})
    enrollment = Enrollment.objects.get(user_id=signed_in_user_id(client))
    graded_upload(enrollment, challenge, 150.0)
    platform.configure(fail_scores=1)
    out = command("lti_push_grades", "--challenge", challenge.slug)
    assert "1 failed" in out and "503" in out
    assert Passback.objects.get().state == Passback.State.FAILED
    staff = Client()
    staff.force_login(User.objects.create_superuser("root", "root@example.org", "pw"))
    page = staff.get("/staff/health/").content.decode()
    assert "Grade passback to the LMS failed for 1 result" in page
    assert "1 score(s) sent" in command("lti_push_grades", "--challenge", challenge.slug)
    assert "Grade passback" not in staff.get("/staff/health/").content.decode()


def test_a_rotated_key_signs_while_the_old_one_stays_published_until_retired(
    client: Client, platform: PlatformPeer, site: dict[str, str], live_server: Any, challenge: Any
) -> None:
    def kids() -> list[str]:
        keys = requests.get(site["jwks_url"], timeout=10).json()["keys"]
        return [k["kid"] for k in keys]

    [old] = kids()
    # Registering again changes nothing about the key, and prints the same URLs.
    assert register(platform, live_server.url) == site and kids() == [old]
    assert json.loads(json.dumps(site)).keys() == {
        "login_url", "launch_url", "jwks_url", "deep_linking_url",
    }  # fmt: skip
    command("lti_rotate_key")
    assert len(kids()) == 2 and old in kids()
    # The new key signs the tool's token requests (the platform fetches the key set).
    launch(client, platform, site, sub="teacher-2", roles=["Instructor"],
           custom={"challenge": challenge.slug})  # fmt: skip
    platform.configure(members={"course-1": [member("teacher-2", "Instructor")]})
    assert "1 member(s) listed" in command("lti_sync_roster")
    # Key ids are base64url and may begin with "-", which the "--retire=KID" form takes.
    command("lti_rotate_key", f"--retire={old}")
    assert old not in kids() and len(kids()) == 1
    with pytest.raises(CommandError, match="no older published key -x"):
        command("lti_rotate_key", "--retire=-x")


def test_a_changed_result_or_a_reveal_sends_a_task_after_commit_to_the_housekeeping_queue(
    client: Client,
    platform: PlatformPeer,
    site: dict[str, str],
    challenge: Any,
    sent: list[Any],
    settings: Any,
) -> None:
    other = challenge_in(challenge.semester, "keypoints-other")
    launch(client, platform, site, sub="stud-4", custom={"challenge": challenge.slug})
    enrollment = Enrollment.objects.get(user_id=signed_in_user_id(client))
    sent.clear()
    with transaction.atomic():
        graded_upload(enrollment, challenge, 150.0)
        assert sent == []  # not before the commit
    queue = {"queue": settings.HOUSEKEEPING_QUEUE}
    assert sent == [("lti.tasks.push_score", [enrollment.pk, challenge.pk], queue)]
    sent.clear()
    challenge_reveal(other)
    assert sent == [("lti.tasks.push_challenge", [other.pk], queue)]
    # A semester no LMS course is linked to sends nothing.
    sent.clear()
    ContextSemester.objects.all().delete()
    graded_upload(enrollment, challenge, 160.0)
    assert sent == []
