"""Pages for course staff outside the admin: a challenge's grade book and pass list, and what a
re-grade changed. Each answers 404 to anyone who may not see it."""

from __future__ import annotations

import csv

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, render

from courses.access import AuthedRequest, User, challenge_for_staff, is_staff
from grader.evaluate import json_number
from leaderboard.boards import gradebook_rows
from leaderboard.views.public import headline_figures
from submissions.models import RegradeBatch
from submissions.regrade import Progress, regrade_batch_report


def batch_for_staff(user: User, pk: int) -> RegradeBatch:
    """A re-grade batch, for site staff only (404 to anyone else)."""
    if not is_staff(user):
        raise Http404("no such re-grade")
    return get_object_or_404(RegradeBatch.objects.select_related("challenge", "created_by"), pk=pk)


@login_required
def regrade_report(request: AuthedRequest, pk: int) -> HttpResponse:
    batch = batch_for_staff(request.user, pk)
    changes = regrade_batch_report(batch)
    if request.GET.get("format") == "csv":
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="regrade-{batch.pk}.csv"'
        writer = csv.writer(response)
        writer.writerow(
            [
                "submission",
                "handle",
                "username",
                "old_score",
                "new_score",
                "old_passed",
                "new_passed",
            ]
        )
        for c in changes:
            writer.writerow(
                [
                    c.submission_id,
                    c.handle,
                    c.username,
                    c.old_score,
                    c.new_score,
                    c.old_passed,
                    c.new_passed,
                ]
            )
        return response
    context = {"batch": batch, "changes": changes, "progress": Progress.of(batch)}
    return render(request, "leaderboard/staff/regrade_report.html", context)


@login_required
def challenge_staff(request: AuthedRequest, slug: str) -> HttpResponse:
    """The grade book: who is behind each handle, every student of the semester."""
    challenge = challenge_for_staff(request.user, slug)
    return render(
        request,
        "leaderboard/staff/gradebook.html",
        {
            "challenge": challenge,
            "course": challenge.semester.course,
            "rows": gradebook_rows(challenge),
            "headline": headline_figures(challenge),
        },
    )


@login_required
def challenge_passes_csv(request: AuthedRequest, slug: str) -> HttpResponse:
    """The pass list for the grade book, one row per student, times in the course's timezone."""
    challenge = challenge_for_staff(request.user, slug)
    zone = challenge.semester.course.tzinfo
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="{challenge.semester.slug}-{challenge.slug}-passes.csv"'
    )
    writer = csv.writer(response)
    writer.writerow(
        # "best_score" is the counted upload's score under the challenge's policies (public
        # before the reveal, private after); the name stays for scripts that read the file.
        [
            "username",
            "email",
            "handle",
            "best_score",
            "passed",
            "submissions",
            "best_submitted_at",
            "late_days",
        ]
    )
    for row in gradebook_rows(challenge):
        writer.writerow(
            [
                row.username,
                row.email,
                row.handle,
                "" if row.best_score is None else json_number(row.best_score),
                "yes" if row.passed else "no",
                row.submissions,
                ""
                if row.best_submitted_at is None
                else row.best_submitted_at.astimezone(zone).isoformat(timespec="seconds"),
                row.late_days,
            ]
        )
    return response
