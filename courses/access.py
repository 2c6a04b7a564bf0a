"""Access helpers: each returns the row or raises 404 to anyone who may not see it."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.contrib.auth.models import User as DjangoUser
from django.db.models import Q
from django.http import Http404, HttpRequest
from django.shortcuts import get_object_or_404

from courses.models import Challenge, Course, Enrollment, Semester

User = AbstractBaseUser | AnonymousUser


class AuthedRequest(HttpRequest):
    """The request of a ``login_required`` view: its user is signed in."""

    user: DjangoUser


def is_staff(user: User) -> bool:
    return bool(getattr(user, "is_staff", False)) and user.is_active


#: site staff need this to see every semester's grade books, pass lists, re-grade reports and
#: staff logs: ``is_staff`` alone only opens the admin (superusers hold every permission)
GRADEBOOK_PERMISSION = "courses.view_gradebook"


def sees_every_gradebook(user: User) -> bool:
    """A superuser, or site staff given ``courses.view_gradebook`` (directly or by a group)."""
    if not is_staff(user) and not getattr(user, "is_superuser", False):
        return False  # checked first: a TA's page costs no permission query
    return isinstance(user, DjangoUser) and user.is_active and user.has_perm(GRADEBOOK_PERMISSION)


def is_course_staff(user: User, semester: Semester) -> bool:
    """Staff who see every grade book, or a teaching assistant of this semester."""
    if sees_every_gradebook(user):
        return True
    if isinstance(user, AnonymousUser):
        return False
    return Enrollment.objects.filter(
        user_id=user.pk, semester=semester, role=Enrollment.Role.TA
    ).exists()


def in_administered_semesters(user: User, path: str) -> Q:
    """A filter for the rows whose semester (reached from the row by ``path``, e.g.
    ``"challenge__semester"``; ``"pk"`` for semesters) this user may administer.

    The one rule of the admin's scope: every semester for a superuser or holder of
    ``courses.view_gradebook`` (an empty filter), the semesters of their TA seats for anyone
    else (one subquery, never a query per row), none for the anonymous.
    """
    if sees_every_gradebook(user):
        return Q()
    if isinstance(user, AnonymousUser) or user.pk is None:
        return Q(pk__in=[])
    seats = Enrollment.objects.filter(user_id=user.pk, role=Enrollment.Role.TA)
    return Q(**{f"{path}__in": seats.values("semester_id")})


def course_for_member(user: User, slug: str) -> Course:
    """A course the user is enrolled in (any semester); staff see every course."""
    course = get_object_or_404(Course, slug=slug)
    if is_staff(user):
        return course
    if (
        isinstance(user, AnonymousUser)
        or not Enrollment.objects.filter(user_id=user.pk, semester__course=course).exists()
    ):
        raise Http404("no such course")
    return course


def challenge_for_member(user: User, slug: str) -> tuple[Challenge, Enrollment | None]:
    """A challenge of a semester the user is enrolled in, with that enrolment.

    Staff who are not enrolled see the challenge with ``None``: they may look but not upload.
    """
    challenge = get_object_or_404(Challenge.objects.select_related("semester__course"), slug=slug)
    if isinstance(user, AnonymousUser):
        raise Http404("no such challenge")
    enrollment = Enrollment.objects.filter(user_id=user.pk, semester=challenge.semester).first()
    if enrollment is None and not is_staff(user):
        raise Http404("no such challenge")
    return challenge, enrollment


def challenge_public(slug: str) -> Challenge:
    """Leaderboards are public: any challenge, by slug."""
    return get_object_or_404(Challenge.objects.select_related("semester__course"), slug=slug)


def course_public(slug: str) -> Course:
    """The archive lists public boards: any course, by slug."""
    return get_object_or_404(Course, slug=slug)


def challenge_for_staff(user: User, slug: str) -> Challenge:
    """A challenge for its grade book: site staff, or a teaching assistant of its semester."""
    challenge = challenge_public(slug)
    if not is_course_staff(user, challenge.semester):
        raise Http404("no such challenge")
    return challenge
