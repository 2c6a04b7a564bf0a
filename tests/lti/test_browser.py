"""LTI in Chromium against the real platform process: a click in the course signs the person
in on the challenge page; an instructor's deep linking returns an LtiResourceLink to the
platform; a tool shown in a frame offers a window of its own; a refusal says why; staff sync
the roster from the admin."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from courses.models import Enrollment
from lti.models import ContextSemester
from tests.lti.conftest import register
from tests.lti.peer import PlatformPeer

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def site(live_server: Any, platform: PlatformPeer) -> str:
    # The platform and the tool share 127.0.0.1 (one site for the browser's cookies, as the
    # tests of SAML do); in production both are HTTPS and the cookies SameSite=None.
    url = str(live_server.url).replace("localhost", "127.0.0.1")
    register(platform, url)
    return url


def test_a_click_in_the_course_signs_in_on_the_challenge_page(
    tab: Page, platform: PlatformPeer, site: str, challenge: Any
) -> None:
    tab.goto(
        platform.launch_url(
            sub="br-1",
            email="br1@example.org",
            roles=["Learner"],
            custom={"challenge": challenge.slug},
        )
    )
    expect(tab).to_have_url(f"{site}/challenges/{challenge.slug}/")
    expect(tab.get_by_role("button", name="Sign out")).to_be_visible()
    expect(tab.locator("h1")).to_contain_text(challenge.title)
    user = User.objects.get(email="br1@example.org")
    assert Enrollment.objects.get(user=user).semester == challenge.semester


def test_an_instructor_links_a_challenge_by_deep_linking(
    tab: Page, platform: PlatformPeer, site: str, challenge: Any
) -> None:
    tab.goto(
        platform.launch_url(
            sub="br-teacher",
            email="teacher@example.org",
            roles=["Instructor"],
            deep_linking=True,
        )
    )
    expect(tab).to_have_url(f"{site}/lti/pick/")
    tab.get_by_label(f"{challenge.title} ({challenge.semester})").check()
    tab.get_by_role("button", name="Add to my course").click()
    # The answer goes back to the platform by itself, which checks its signature against the
    # tool's key set.
    expect(tab.locator("h1")).to_have_text("Deep link received")
    [item] = platform.state()["deep_links"]
    assert item["type"] == "ltiResourceLink"
    assert item["custom"] == {"challenge": challenge.slug}
    assert item["url"] == f"{site}/lti/launch/"
    assert ContextSemester.objects.get().semester == challenge.semester
    teacher = User.objects.get(email="teacher@example.org")
    assert Enrollment.objects.get(user=teacher).role == Enrollment.Role.TA
    # A student's launch of the placed link (its custom parameter) opens the challenge.
    student = tab.context.browser.new_context().new_page()  # type: ignore[union-attr]
    student.goto(platform.launch_url(sub="br-2", roles=["Learner"], custom=item["custom"]))
    expect(student).to_have_url(f"{site}/challenges/{challenge.slug}/")
    student.context.close()


def test_inside_a_frame_the_tool_offers_a_new_window(
    tab: Page, platform: PlatformPeer, site: str, challenge: Any
) -> None:
    hint, _ = platform.hint(sub="br-3", roles=["Learner"], custom={"challenge": challenge.slug})
    tab.goto(f"{platform.base}/frame?hint={hint}")
    frame = tab.frame_locator("#tool")
    button = frame.get_by_role("link", name="Open in a new window")
    expect(button).to_be_visible()
    with tab.context.expect_page() as opened:
        button.click()
    window = opened.value
    expect(window).to_have_url(f"{site}/challenges/{challenge.slug}/")
    expect(window.get_by_role("button", name="Sign out")).to_be_visible()


def test_a_refused_launch_says_why_in_the_browser(
    tab: Page, platform: PlatformPeer, site: str, challenge: Any
) -> None:
    tab.goto(
        platform.launch_url(
            sub="br-4", roles=["Learner"], custom={"challenge": challenge.slug}, expired=True
        )
    )
    expect(tab.locator(".lti-refusal")).to_contain_text("expired")
    expect(tab.get_by_role("link", name="Sign in")).to_be_visible()
    assert not User.objects.exists()


def test_staff_sync_the_roster_from_the_admin(
    tab: Page, platform: PlatformPeer, site: str, challenge: Any
) -> None:
    tab.goto(
        platform.launch_url(sub="br-5", roles=["Learner"], custom={"challenge": challenge.slug})
    )
    expect(tab).to_have_url(f"{site}/challenges/{challenge.slug}/")
    platform.configure(
        members={
            "course-1": [
                {"user_id": f"m-{n}", "roles": ["Learner"], "status": "Active"} for n in range(5)
            ]
        },
        page_size=2,
    )
    User.objects.create_superuser("root", "root@example.org", "root")
    staff = tab.context.browser.new_context().new_page()  # type: ignore[union-attr]
    staff.goto(f"{site}/admin/login/")
    staff.fill("#id_username", "root")
    staff.fill("#id_password", "root")
    staff.get_by_role("button", name="Log in").click()
    staff.goto(f"{site}/admin/courses/semester/")
    staff.locator("input[name=_selected_action]").first.check()
    staff.select_option("select[name=action]", "sync_roster")
    staff.get_by_role("button", name="Go").click()
    expect(staff.locator(".messagelist")).to_contain_text("5 member(s) listed")
    assert Enrollment.objects.filter(semester=challenge.semester).count() == 6
    staff.context.close()
