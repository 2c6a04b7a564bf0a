"""Revealing final results before the last personal window closes.

Final results come out by themselves when the last student's extension or late days run out
(``submissions.policies.final_results_at``). Staff may reveal them earlier, but only after a
page that names every student who may still upload: those students keep seeing the public
phase (their own uploads' public scores, the public board) until their own window closes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from courses.models import Challenge
from submissions.policies import OpenWindow, windows_open
from submissions.standings import challenge_reveal


@dataclass(frozen=True)
class RevealPreview:
    challenge: Challenge
    open_windows: list[OpenWindow]

    @property
    def final_at(self) -> datetime | None:
        """When final results come out without staff (None: held): the last open window's
        close, since a window still open closes after every closed one and the deadline."""
        if self.challenge.hold_results or not self.open_windows:
            return None
        return max(window.closes_at for window in self.open_windows)


def reveal_confirm(
    model_admin: admin.ModelAdmin, request: HttpRequest, challenges: list[Challenge]
) -> HttpResponse | None:
    """Reveal ``challenges`` at once when nobody may still upload to them, else after the
    confirmation page (``post=yes``). Returns None once revealed, else that page."""
    previews = [
        RevealPreview(challenge, windows_open(challenge))
        for challenge in challenges
        if challenge.revealed_at is None
    ]
    waiting = [preview for preview in previews if preview.open_windows]
    if waiting and request.POST.get("post") != "yes":
        opts = model_admin.model._meta
        context = {
            **model_admin.admin_site.each_context(request),
            "opts": opts,
            "title": "Reveal final results early?",
            "previews": waiting,
            "action": request.POST.get("action", ""),
            "selected": request.POST.getlist(ACTION_CHECKBOX_NAME),
            "select_across": request.POST.get("select_across", ""),
            "back": request.get_full_path(),
        }
        return TemplateResponse(request, "leaderboard/admin/reveal_confirm.html", context)
    for preview in previews:
        challenge_reveal(preview.challenge)
        if preview.open_windows:
            model_admin.message_user(
                request,
                f"{preview.challenge}: final results revealed;"
                f" {len(preview.open_windows)} student(s) whose window is still open see public"
                " scores of their own uploads until it closes.",
                messages.WARNING,
            )
    model_admin.message_user(request, f"{len(previews)} challenge(s) now rank by the private part.")
    return None
