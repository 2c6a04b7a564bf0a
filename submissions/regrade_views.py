"""Staff pages of a re-grade: what it changed (or would change), as a page and as CSV."""

from __future__ import annotations

import csv

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, render

from leaderboard.access import AuthedRequest, User, is_staff
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
    return render(request, "submissions/regrade_report.html", context)
