"""Home and course pages: what each kind of visitor sees."""

from __future__ import annotations


def test_it_shows_public_leaderboards_to_anonymous_visitors(client, challenge):
    page = client.get("/").content.decode()

    assert f"/challenges/{challenge.slug}/leaderboard/" in page
    assert "Sign in" in page


def test_it_lists_a_students_courses_and_challenges(client, student, enrollment, challenge):
    client.force_login(student)

    page = client.get("/").content.decode()

    assert "Introduction to Deep Learning" in page
    assert f"/challenges/{challenge.slug}/" in page
    assert enrollment.handle in page


def test_it_explains_an_empty_home(client, outsider):
    client.force_login(outsider)

    assert "not enrolled in any course yet" in client.get("/").content.decode()


def test_it_shows_a_course_with_its_deadlines(client, student, challenge, course):
    client.force_login(student)

    response = client.get(f"/courses/{course.slug}/")

    assert response.status_code == 200
    page = response.content.decode()
    assert "Europe/Berlin" in page
    assert "data-localize" in page
    assert challenge.title in page


def test_it_is_404_for_a_course_the_user_does_not_take(client, outsider, course):
    client.force_login(outsider)

    assert client.get(f"/courses/{course.slug}/").status_code == 404


def test_it_shows_staff_any_course(client, staff, course, challenge):
    client.force_login(staff)

    response = client.get(f"/courses/{course.slug}/")

    assert response.status_code == 200
    page = response.content.decode()
    assert course.title in page and challenge.title in page


def test_it_signs_in_and_out(client, student):
    response = client.post("/accounts/login/", {"username": "student", "password": "student"})
    assert response.status_code == 302

    assert client.get("/").context["user"].is_authenticated
    client.post("/accounts/logout/")
    assert not client.get("/").context["user"].is_authenticated


def test_it_builds_home_in_a_constant_number_of_queries(
    client, student, challenge, earlier_semester, django_assert_num_queries
):
    from courses.models import Enrollment
    from tests.platform.conftest import make_challenge

    Enrollment.objects.create(user=student, semester=earlier_semester)
    make_challenge(earlier_semester, slug="old-keypoints")
    client.force_login(student)

    # session, user, the enrolments with semester and course, their challenges
    with django_assert_num_queries(4):
        client.get("/")
