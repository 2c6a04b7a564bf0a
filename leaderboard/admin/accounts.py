"""Invitations in the admin: who was invited to which semester, when and by whom (read only;
they are sent by the Semester action or ``import_roster --invite``). External identities: which
provider account signs in which account here (read only; deleting one unlinks it, and the next
sign-in with that provider account links again by the usual rules)."""

from django.contrib import admin
from django.http import HttpRequest

from accounts.models import ExternalIdentity, Invitation
from leaderboard.admin.scope import ScopedAdmin, SiteWideAdmin


@admin.register(Invitation)
class InvitationAdmin(ScopedAdmin):
    list_display = ["user", "user_email", "semester", "sent_at", "sent_count", "sent_by"]
    list_filter = ["semester__course", "semester"]
    list_select_related = ["user", "semester__course", "sent_by"]
    search_fields = ["user__username", "user__email"]
    date_hierarchy = "sent_at"

    @admin.display(description="email", ordering="user__email")
    def user_email(self, invitation: Invitation) -> str:
        return invitation.user.email

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(ExternalIdentity)
class ExternalIdentityAdmin(SiteWideAdmin):
    site_wide_because = "a sign-in link belongs to an account, which spans semesters"

    list_display = [
        "user",
        "user_email",
        "issuer",
        "subject",
        "method",
        "created_at",
        "last_used_at",
    ]
    list_filter = ["issuer", "method"]
    list_select_related = ["user"]
    search_fields = ["user__username", "user__email", "subject"]
    date_hierarchy = "created_at"
    fields = readonly_fields = ("user", "issuer", "subject", "method", "created_at", "last_used_at")

    @admin.display(description="email here", ordering="user__email")
    def user_email(self, identity: ExternalIdentity) -> str:
        return identity.user.email

    # Links are made by signing in (accounts.identities), never typed in: a mistyped subject
    # would hand an account to a stranger.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
