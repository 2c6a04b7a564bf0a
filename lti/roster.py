"""The roster from the LMS (Names and Role Provisioning Service): every page of each linked
course's memberships, read through django-lti's NRPS helper (pylti1p3 follows the ``next``
links). Learners are enrolled, instructors and teaching assistants get a teaching assistant's
seat, accounts are linked as at a launch; members no longer listed are marked inactive in the
course's roster (``LtiMembership.is_active``), and their enrolments and results are kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import transaction
from lti_tool.models import LtiMembership, LtiUser
from lti_tool.services.nrps import fetch_member_data

from accounts.identities import ProviderPerson, SignInRefused, identity_user_find_or_create
from accounts.models import ExternalIdentity
from courses.models import Semester
from lti.launch import roles_learner, roles_staff, seat_ensure
from lti.models import ContextSemester


@dataclass
class RosterCounts:
    courses: int = 0
    members: int = 0
    accounts_created: int = 0
    accounts_linked: int = 0
    students_enrolled: int = 0
    ta_seats: int = 0
    marked_inactive: int = 0
    errors: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return (
            f"{self.courses} LMS course(s), {self.members} member(s) listed:"
            f" {self.accounts_created} account(s) created, {self.accounts_linked} linked by"
            f" email, {self.students_enrolled} student(s) enrolled, {self.ta_seats} TA seat(s)"
            f" given, {self.marked_inactive} marked inactive, {len(self.errors)} error(s)"
        )


def roster_sync(semester: Semester | None = None) -> RosterCounts:
    counts = RosterCounts()
    links = ContextSemester.objects.select_related(
        "context__deployment__registration", "semester__course"
    ).order_by("pk")
    if semester is not None:
        links = links.filter(semester=semester)
    for link in links:
        context = link.context
        if not context.memberships_url:
            continue
        try:
            members = fetch_member_data(context)
        except Exception as exc:
            counts.errors.append(f"{context}: {exc}")
            continue
        counts.courses += 1
        registration = context.deployment.registration
        with transaction.atomic():
            context.update_memberships(members)
            listed: set[str] = set()
            for member in members:
                sub = str(member.get("user_id") or "")
                if not sub or member.get("status", "Active") != "Active":
                    continue
                listed.add(sub)
                counts.members += 1
                roles = member.get("roles") or []
                staff, learner = roles_staff(roles), roles_learner(roles)
                if not (staff or learner):
                    continue
                known = ExternalIdentity.objects.filter(
                    issuer=registration.issuer, subject=sub
                ).exists()
                person = ProviderPerson(
                    provider=registration.name or registration.issuer,
                    issuer=registration.issuer,
                    subject=sub,
                    email=str(member.get("email") or ""),
                    email_verified=True,
                )
                try:
                    with transaction.atomic():
                        user = identity_user_find_or_create(person)
                except SignInRefused as exc:
                    counts.errors.append(f"{sub}: {exc}")
                    continue
                if not known:
                    method = (
                        ExternalIdentity.objects.filter(issuer=registration.issuer, subject=sub)
                        .values_list("method", flat=True)
                        .first()
                    )
                    if method == ExternalIdentity.Method.CREATED:
                        counts.accounts_created += 1
                    else:
                        counts.accounts_linked += 1
                LtiUser.objects.filter(registration=registration, sub=sub).update(auth_user=user)
                had = (
                    user.enrollments.filter(semester=link.semester)
                    .values_list("role", flat=True)
                    .first()
                )
                enrollment = seat_ensure(user, link.semester, staff=staff)
                if had != enrollment.role:
                    if enrollment.is_ta:
                        counts.ta_seats += 1
                    else:
                        counts.students_enrolled += 1
            counts.marked_inactive += (
                LtiMembership.objects.filter(context=context, is_active=True)
                .exclude(user__sub__in=listed)
                .update(is_active=False)
            )
    return counts
