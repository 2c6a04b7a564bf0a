"""Closing and reopening semesters: a closed semester refuses uploads and its boards are final."""

from __future__ import annotations

from django.db.models import QuerySet
from django.utils import timezone

from courses.models import Semester


def semesters_close(semesters: QuerySet[Semester]) -> int:
    """Close the open ones: uploads refused, boards final. Returns how many were closed."""
    return semesters.filter(closed=False).update(closed=True, closed_at=timezone.now())


def semesters_reopen(semesters: QuerySet[Semester]) -> int:
    return semesters.filter(closed=True).update(closed=False, closed_at=None)
