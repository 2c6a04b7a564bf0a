"""The admin's "LTI platforms" (a registration with its deployments and the URLs to enter in
the LMS), the LMS courses linked to semesters (staff change the link here), grade passbacks,
and the "sync roster from the LMS" action on semesters."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from lti_tool.models import LtiDeployment, LtiMembership, LtiRegistration

from courses.models import Semester
from leaderboard.admin.scope import SiteWideAdmin
from lti.models import ContextSemester, Passback, Platform

# django-lti registers its own "LTI registrations" page; this site's is "LTI platforms".
if admin.site.is_registered(LtiRegistration):
    admin.site.unregister(LtiRegistration)


class DeploymentInline(admin.TabularInline):
    model = LtiDeployment
    fields = ["deployment_id", "is_active"]
    extra = 1


@admin.register(Platform)
class PlatformAdmin(SiteWideAdmin):
    site_wide_because = "an LMS registration serves every course and semester of the site"

    list_display = ["name", "issuer", "client_id", "is_active"]
    fields = [
        "name",
        "issuer",
        "client_id",
        "auth_url",
        "token_url",
        "keyset_url",
        "is_active",
        "tool_urls",
    ]
    readonly_fields = ["tool_urls"]
    inlines = [DeploymentInline]

    @admin.display(description=gettext_lazy("URLs to enter in the LMS"))
    def tool_urls(self, obj: Platform) -> str:
        if obj.pk is None:
            return _("Saved first.")
        login = reverse("lti_login", args=[obj.uuid])
        return format_html(
            "login_url {}<br>launch_url {}<br>jwks_url {}",
            login,
            reverse("lti_launch"),
            reverse("lti_jwks"),
        )

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        from lti.tool import tool_key

        super().save_model(request, obj, form, change)
        tool_key()


@admin.register(ContextSemester)
class ContextSemesterAdmin(SiteWideAdmin):
    site_wide_because = "which semester an LMS course feeds is chosen for the whole site"

    list_display = ["context", "semester", "linked_at"]
    list_select_related = ["context", "semester__course"]
    fields = ["context", "semester", "linked_at"]
    readonly_fields = ["context", "linked_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # made by a launch


@admin.register(Passback)
class PassbackAdmin(SiteWideAdmin):
    site_wide_because = "what the site sent to the LMS platforms, for whoever registered them"

    list_display = ["enrollment", "challenge", "context", "state", "attempts", "sent_at", "error"]
    list_filter = ["state"]
    list_select_related = ["enrollment__semester__course", "challenge", "context"]
    readonly_fields = [f.name for f in Passback._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(LtiMembership)
class MembershipAdmin(SiteWideAdmin):
    site_wide_because = (
        "the LMS's own roster records, kept per LMS course and user, not per semester"
    )

    """The LMS courses' rosters as the last sync or launch saw them: who left is inactive."""

    list_display = ["user", "context", "is_learner", "is_instructor", "is_active"]
    list_filter = ["is_active", "is_learner", "is_instructor"]
    list_select_related = ["user", "context"]
    search_fields = ["user__sub", "user__email", "user__name"]
    readonly_fields = [f.name for f in LtiMembership._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.action(description=gettext_lazy("Sync roster from the LMS"))
def sync_roster(modeladmin: Any, request: HttpRequest, queryset: QuerySet[Semester]) -> None:
    from lti.roster import roster_sync

    for semester in queryset:
        counts = roster_sync(semester)
        level = messages.WARNING if counts.errors else messages.SUCCESS
        modeladmin.message_user(request, f"{semester}: {counts}", level)


_semester_admin = admin.site._registry.get(Semester)
if _semester_admin is not None:
    _semester_admin.actions = [*(_semester_admin.actions or []), sync_roster]
