"""Invitations in the admin: who was invited to which semester, when and by whom (read only;
they are sent by the Semester action or ``import_roster --invite``)."""

from django.contrib import admin
from django.http import HttpRequest

from accounts.models import Invitation
from leaderboard.admin.scope import ScopedAdmin


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
