"""What a validated launch does: who signs in, which challenge and semester, which seat.

pylti1p3 has checked the id_token (signature, issuer, audience, expiry, nonce, deployment) by
the time these functions run; ``lti.views`` turns every refusal into a page that says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils.translation import gettext as _
from lti_tool.models import LtiContext, LtiLaunch, LtiResourceLink, LtiUser

from accounts.identities import (
    ProviderPerson,
    email_normalise,
    identity_link,
    identity_user_find_or_create,
    users_by_email,
)
from accounts.models import ExternalIdentity
from courses.models import Challenge, Enrollment, Semester
from lti.models import ContextSemester, Placement

CUSTOM_CLAIM = "https://purl.imsglobal.org/spec/lti/claim/custom"
ROLES_CLAIM = "https://purl.imsglobal.org/spec/lti/claim/roles"
#: LTI roles that get a teaching assistant's seat (the context role and its sub-role)
STAFF_ROLES = {"Instructor", "TeachingAssistant"}


class LaunchRefused(Exception):
    """A launch this site will not act on; the message says why (shown to the person)."""

    def __init__(self, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.http_status = status


def roles_staff(roles: list[str] | None) -> bool:
    """Whether LTI roles name an instructor or teaching assistant of the context."""
    for role in roles or []:
        short = role.rsplit("#", 1)[-1].rsplit("/", 1)[-1]
        if short in STAFF_ROLES:
            return True
    return False


def roles_learner(roles: list[str] | None) -> bool:
    return any(role.rsplit("#", 1)[-1].rsplit("/", 1)[-1] == "Learner" for role in roles or [])


@dataclass
class Launched:
    user: User
    staff: bool
    context: LtiContext | None
    resource_link: LtiResourceLink | None
    challenge: Challenge | None
    semester: Semester | None


def person_of(lti_launch: LtiLaunch) -> ProviderPerson:
    registration = lti_launch.registration
    return ProviderPerson(
        provider=registration.name or _("your learning platform"),
        issuer=lti_launch.get_claim("iss") or registration.issuer,
        subject=str(lti_launch.get_claim("sub") or ""),
        email=str(lti_launch.get_claim("email") or ""),
        # The platform vouches for its members' addresses (it made the course's roster).
        email_verified=True,
    )


def custom_challenge(lti_launch: LtiLaunch) -> str:
    custom = lti_launch.get_claim(CUSTOM_CLAIM) or {}
    value = custom.get("challenge") if isinstance(custom, dict) else None
    return str(value or "").strip()


def context_semester(context: LtiContext | None) -> Semester | None:
    if context is None:
        return None
    link = (
        ContextSemester.objects.select_related("semester__course").filter(context=context).first()
    )
    return None if link is None else link.semester


def context_link(context: LtiContext | None, semester: Semester) -> None:
    """The first launch that names a challenge links the LMS course to its semester; after
    that, a challenge of another semester is refused (staff change the link in the admin)."""
    if context is None:
        return
    link, _created = ContextSemester.objects.get_or_create(
        context=context, defaults={"semester": semester}
    )
    if link.semester_id != semester.pk:
        raise LaunchRefused(
            _(
                "This LMS course is linked to %(linked)s, but the link opens a challenge of"
                " %(other)s. Ask the course staff to correct the placement or the link."
            )
            % {"linked": link.semester, "other": semester},
            status=409,
        )


def seat_ensure(user: User, semester: Semester, *, staff: bool) -> Enrollment:
    """Enrol ``user`` (a pseudonymous handle, as every enrolment); instructors and teaching
    assistants get a teaching assistant's seat. A seat is never lowered by a launch."""
    role = Enrollment.Role.TA if staff else Enrollment.Role.STUDENT
    enrollment, created = Enrollment.objects.get_or_create(
        user=user, semester=semester, defaults={"role": role}
    )
    if not created and staff and enrollment.role != Enrollment.Role.TA:
        enrollment.role = Enrollment.Role.TA
        enrollment.save(update_fields=["role"])
    return enrollment


def account_of(person: ProviderPerson, signed_in: User | None) -> User:
    """The account a launch signs in (see ``accounts.identities``). Staff accounts are never
    taken by email alone: a member of staff signed in here with their password, whose email is
    the launch's, links their LMS account by launching once (both proofs at once)."""
    linked = ExternalIdentity.objects.filter(issuer=person.issuer, subject=person.subject)
    if person.email and not linked.exists():
        if (
            signed_in is not None
            and signed_in.is_authenticated
            and signed_in.email
            and email_normalise(signed_in.email) == email_normalise(person.email)
        ):
            identity_link(signed_in, person)
            return signed_in
        owners = users_by_email(person.email)
        if len(owners) == 1 and (owners[0].is_staff or owners[0].is_superuser):
            raise LaunchRefused(
                _(
                    "%(email)s belongs to a staff account, which a launch never signs in by"
                    " email alone. Sign in to this site with your username and password in this"
                    " browser, then open the tool from your course again (in a new window):"
                    " that links your LMS account once."
                )
                % {"email": person.email}
            )
    return identity_user_find_or_create(person)


def launch_accept(lti_launch: LtiLaunch, signed_in: User | None = None) -> Launched:
    """Sign-in account, challenge, semester and seat of a validated launch."""
    roles = lti_launch.get_claim(ROLES_CLAIM) or []
    staff = roles_staff(roles)
    with transaction.atomic():
        from lti_tool.utils import sync_data_from_launch

        sync_data_from_launch(lti_launch)
        person = person_of(lti_launch)
        user = account_of(person, signed_in)
        LtiUser.objects.filter(registration=lti_launch.registration, sub=person.subject).update(
            auth_user=user
        )
        context = lti_launch.context if lti_launch.context_claim is not None else None
        resource_link = (
            lti_launch.resource_link
            if lti_launch.is_resource_launch and lti_launch.resource_link_claim
            else None
        )
        challenge = _challenge_of(lti_launch, resource_link)
        semester = challenge.semester if challenge is not None else context_semester(context)
        if challenge is not None:
            context_link(context, challenge.semester)
            if resource_link is not None:
                Placement.objects.update_or_create(
                    resource_link=resource_link, defaults={"challenge": challenge}
                )
        if semester is not None and (staff or roles_learner(roles) or not roles):
            seat_ensure(user, semester, staff=staff)
    return Launched(user, staff, context, resource_link, challenge, semester)


def _challenge_of(lti_launch: LtiLaunch, resource_link: LtiResourceLink | None) -> Challenge | None:
    slug = custom_challenge(lti_launch)
    if slug:
        challenge = Challenge.objects.select_related("semester__course").filter(slug=slug).first()
        if challenge is None:
            raise LaunchRefused(
                _(
                    "The LMS link names the challenge “%(slug)s”, which does not exist here."
                    " Ask the course staff to correct the link."
                )
                % {"slug": slug},
                status=404,
            )
        return challenge
    if resource_link is not None:
        placement = (
            Placement.objects.select_related("challenge__semester__course")
            .filter(resource_link=resource_link)
            .first()
        )
        if placement is not None:
            return placement.challenge
    return None


def challenges_to_pick(user: User, context: LtiContext | None) -> list[Challenge]:
    """What an instructor may place: the linked semester's challenges, else those of the
    current semesters and of the semesters where they hold a teaching assistant's seat."""
    semester = context_semester(context)
    rows = Challenge.objects.select_related("semester__course").order_by(
        "semester__course__title", "deadline", "title"
    )
    if semester is not None:
        return list(rows.filter(semester=semester))
    seats = Enrollment.objects.filter(user=user, role=Enrollment.Role.TA).values("semester_id")
    from django.db.models import Q

    return list(rows.filter(Q(semester__is_current=True) | Q(semester_id__in=seats)))


def launch_pick(
    user: User, lti_launch: LtiLaunch, challenge: Challenge, *, staff: bool
) -> dict[str, Any]:
    """An instructor chose ``challenge`` for this placement: link the course, take the seat."""
    context = lti_launch.context if lti_launch.context_claim is not None else None
    with transaction.atomic():
        context_link(context, challenge.semester)
        seat_ensure(user, challenge.semester, staff=staff)
        if lti_launch.is_resource_launch and lti_launch.resource_link_claim:
            Placement.objects.update_or_create(
                resource_link=lti_launch.resource_link, defaults={"challenge": challenge}
            )
    return {"challenge": challenge}
