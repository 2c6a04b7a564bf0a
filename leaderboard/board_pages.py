"""One page of a board, ranked by the database: what the board page, its histogram and the JSON
API read, at a cost that does not grow with the number of students.

``leaderboard.boards`` ranks a whole board in Python (the grade book and the reports need every
row). A page needs only its own rows: the standings of one phase (``submissions.standings``)
in the board's order, ``OFFSET``/``LIMIT``, each row's rank computed by a window function
(``RANK()``: equal scores share a rank, 1, 2, 2, 4, exactly as ``boards._ranks``), and a
``COUNT`` for the number of pages. On PostgreSQL the window follows the ``standing_board``
index and stops at the page's last row; SQLite sorts the students' standings once. The
viewer's own page comes from two index lookups (their standing, then how many come before it),
and the histogram is binned in SQL.

The rows are the same as ``boards.leaderboard_compute``'s (``tests/platform/
test_board_pages.py`` compares both on a board with ties and infinities); the phase
(``revealed``) is the caller's, per viewer (``results_revealed_to``).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, cast, overload

from django.core.paginator import Page, Paginator
from django.db.models import Count, F, FloatField, Max, Min, Q, QuerySet, Value, Window
from django.db.models.functions import Floor, Greatest, Least, Rank
from django.utils.translation import gettext_lazy

from courses.models import Challenge, Enrollment
from leaderboard.boards import _PHASES, LeaderboardRow, board_version
from submissions.models import Standing
from submissions.reference import Baseline, reference_baseline

#: rows of students on one page of a board (the baseline row comes on top)
PER_PAGE = 100
#: the bins of the board's histogram
BINS = 20
#: the label of the reference model's row on a board
BASELINE_LABEL = gettext_lazy("Course baseline")


@dataclass(frozen=True)
class BaselineRow:
    """The course's reference model as an unranked row between the students it falls between."""

    score: float
    passed: bool
    headline: dict[str, Any]
    public_score: float | None = None
    baseline: ClassVar[bool] = True
    rank: ClassVar[None] = None
    moved: ClassVar[None] = None

    @property
    def handle(self) -> str:
        return str(BASELINE_LABEL)

    @classmethod
    def of(cls, baseline: Baseline) -> BaselineRow:
        return cls(baseline.score, baseline.passed, baseline.headline, baseline.public_score)


def _moves(challenge: Challenge, revealed: bool) -> bool:
    """After the reveal of a split challenge each row says how many places it moved."""
    return revealed and challenge.has_split


class RankedStandings:
    """The ranked rows of one phase of a board, lazily: ``count()`` is one ``COUNT`` query and
    a slice one query, so Django's ``Paginator`` pages it without reading every row.

    Counting students is done on the standings alone, whose ``standing_board`` index holds the
    challenge and the board's order, so the database counts without reading a row; teaching
    assistants (never ranked, and few) are counted apart through their enrolments and taken
    off, instead of joining every standing to its enrolment.
    """

    def __init__(self, challenge: Challenge, revealed: bool) -> None:
        self.challenge = challenge
        self.revealed = revealed
        self.columns = _PHASES[revealed]
        self._count: int | None = None
        self._passed: int | None = None
        self._tas: list[int] | None = None

    def students(self) -> QuerySet[Standing]:
        return Standing.objects.filter(
            challenge=self.challenge, enrollment__role=Enrollment.Role.STUDENT
        )

    def ranked(self) -> QuerySet[Standing]:
        return self.students().filter(**{f"{self.columns['score']}__isnull": False})

    def tas(self) -> list[int]:
        """The semester's teaching assistants' enrolments: one query on the
        ``enrollment_semester_role`` index."""
        if self._tas is None:
            self._tas = list(
                Enrollment.objects.filter(
                    semester_id=self.challenge.semester_id, role=Enrollment.Role.TA
                ).values_list("pk", flat=True)
            )
        return self._tas

    def _everyone(self) -> QuerySet[Standing]:
        """The phase's ranked standings, teaching assistants' included."""
        return Standing.objects.filter(
            challenge=self.challenge, **{f"{self.columns['score']}__isnull": False}
        )

    def _how_many(self, condition: Q) -> int:
        """Ranked students matching ``condition`` on the board's columns: a range of the
        standings' index, less the assistants' (a query more when the semester has some)."""
        everyone = self._everyone().filter(condition)
        staff = everyone.filter(enrollment_id__in=self.tas()).count() if self.tas() else 0
        return everyone.count() - staff

    def _totals(self) -> None:
        """The ranked students, and how many of them passed."""
        totals = {
            "ranked": Count("pk"),
            "passed": Count("pk", filter=Q(**{self.columns["passed"]: True})),
        }
        counted = self._everyone().aggregate(**totals)
        if self.tas():
            staff = self._everyone().filter(enrollment_id__in=self.tas()).aggregate(**totals)
            counted = {name: counted[name] - staff[name] for name in totals}
        self._count, self._passed = counted["ranked"], counted["passed"]

    def count(self) -> int:
        if self._count is None:
            self._totals()
        return cast(int, self._count)

    def passed(self) -> int:
        if self._passed is None:
            self._totals()
        return cast(int, self._passed)

    def __len__(self) -> int:
        return self.count()

    @overload
    def __getitem__(self, index: int) -> LeaderboardRow: ...
    @overload
    def __getitem__(self, index: slice) -> list[LeaderboardRow]: ...
    def __getitem__(self, index: int | slice) -> LeaderboardRow | list[LeaderboardRow]:
        if isinstance(index, int):
            return self.rows(index, index + 1)[0]
        return self.rows(index.start or 0, index.stop)

    def rows(self, start: int, stop: int | None) -> list[LeaderboardRow]:
        """Rows ``start`` to ``stop`` of the board in its order, each with its rank among all
        ranked students: one query in the board's index order (``OFFSET``/``LIMIT``), and one
        ``COUNT`` of the students above the page's first row, whose rank the rest follow."""
        if _moves(self.challenge, self.revealed):
            return self._rows_moved(start, stop)
        columns = self.columns
        score = columns["score"]
        page = [
            dict(row)
            for row in self.ranked()
            .order_by(F(score).desc(), F(columns["created_at"]), F(columns["best_id"]))
            .values(
                "uploads",
                handle=F("enrollment__handle"),
                user_id=F("enrollment__user_id"),
                **{f"the_{name}": F(column) for name, column in columns.items()},
            )[start:stop]
        ]
        if not page:
            return []
        # Standard competition ranking (1, 2, 2, 4): a row's rank is one more than the number
        # of students scoring higher. For the first row that is a count (a range of the index
        # as short as the page is high: counted on page 1 too, so every page costs the same
        # queries); for the next ones, their place, or the row above's rank when the score ties.
        first = page[0]["the_score"]
        rank = 1 + self._how_many(Q(**{f"{score}__gt": first}))
        rows = []
        for offset, row in enumerate(page):
            if offset and row["the_score"] != page[offset - 1]["the_score"]:
                rank = start + offset + 1
            rows.append(self._row(row, rank))
        return rows

    def _row(
        self, row: dict[str, Any], rank: int, moves: bool = False, moved: int | None = None
    ) -> LeaderboardRow:
        return LeaderboardRow(
            rank=rank,
            handle=row["handle"],
            score=float(row["the_score"]),
            headline=row["the_headline"] or {},
            passed=bool(row["the_passed"]),
            submissions=row["uploads"],
            submitted_at=row["the_created_at"],
            submission_id=row["the_best_id"],
            user_id=row["user_id"],
            public_score=row["the_public_score"]
            if moved is not None or _moves(self.challenge, self.revealed)
            else None,
            moved=moved,
        )

    def _rows_moved(self, start: int, stop: int | None) -> list[LeaderboardRow]:
        """After the reveal of a split challenge: each row's private rank and, to say how many
        places it moved, its public rank, by two window functions over the students of either
        phase (one query). One without a score in a phase sorts after every one with a score
        there (``NULLS LAST``) and so changes no rank of that phase."""
        columns = self.columns
        score = columns["score"]
        students = self.students().filter(Q(score__isnull=False) | Q(final_score__isnull=False))
        windows = {
            "the_rank": Window(Rank(), order_by=F(score).desc(nulls_last=True)),
            "public_rank": Window(Rank(), order_by=F("score").desc(nulls_last=True)),
        }
        page = (
            students.annotate(**windows)
            .order_by(
                F(score).desc(nulls_last=True), F(columns["created_at"]), F(columns["best_id"])
            )
            .values(
                "uploads",
                *windows,
                on_public=F("score"),
                handle=F("enrollment__handle"),
                user_id=F("enrollment__user_id"),
                **{f"the_{name}": F(column) for name, column in columns.items()},
            )
        )[start:stop]
        return [
            self._row(
                row,
                row["the_rank"],
                True,
                # Only a student the public board ranked has moved.
                None if row["on_public"] is None else row["public_rank"] - row["the_rank"],
            )
            for row in page
            # students of the public phase that this one does not rank come last
            if row["the_score"] is not None
        ]

    def position_of(self, user_id: int) -> int | None:
        """Where the user's row is on the board (0: first), None if they are not ranked: their
        standing, then a count on the standings' index of the rows before it."""
        columns = self.columns
        score, created, best = columns["score"], columns["created_at"], columns["best_id"]
        mine = (
            self.ranked().filter(enrollment__user_id=user_id).values(score, created, best).first()
        )
        if mine is None:
            return None
        before = (
            Q(**{f"{score}__gt": mine[score]})
            | Q(**{score: mine[score], f"{created}__lt": mine[created]})
            | Q(**{score: mine[score], created: mine[created], f"{best}__lt": mine[best]})
        )
        return self._how_many(before)

    def above(self, value: float) -> int:
        """How many ranked students score at least ``value``: the baseline comes after them."""
        score = self.columns["score"]
        return self._how_many(Q(**{f"{score}__gte": value}))


@dataclass(frozen=True)
class BoardPage:
    """What one page of a board shows."""

    page: Page[LeaderboardRow]
    #: the page's rows, with the baseline row where it falls, if it falls on this page
    rows: list[LeaderboardRow | BaselineRow]
    #: the board's counts, over every page
    ranked: int
    passed: int
    enrolled: int
    baseline: BaselineRow | None = None
    #: the viewer's place on the board (0: first), None if they are not ranked
    my_position: int | None = None
    per_page: int = PER_PAGE

    @property
    def unranked(self) -> int:
        """Enrolled students without a graded submission."""
        return self.enrolled - self.ranked

    @property
    def my_page(self) -> int | None:
        return None if self.my_position is None else self.my_position // self.per_page + 1


#: pages of this process: (challenge, phase, page, per page) -> (version, computed at, the
#: page's student rows, ranked, passed, enrolled); a new result changes the version at once
_pages: dict[tuple[int, bool, int, int], tuple[str, float, list[LeaderboardRow], int, int, int]]
_pages = {}
_pages_lock = threading.Lock()
#: a page is recomputed at least this often (a deletion in the admin changes no version)
PAGE_CACHE_SECONDS = 60
#: pages kept per process, the oldest dropped first
PAGE_CACHE_SIZE = 256


def board_pages_forget() -> None:
    """Drop this process's cached pages (tests start from none)."""
    with _pages_lock:
        _pages.clear()


def _cached(key: tuple[int, bool, int, int], version: str) -> Any:
    with _pages_lock:
        hit = _pages.get(key)
    if hit and hit[0] == version and time.monotonic() - hit[1] < PAGE_CACHE_SECONDS:
        return hit
    return None


def _keep(key: tuple[int, bool, int, int], entry: Any) -> None:
    with _pages_lock:
        _pages[key] = entry
        while len(_pages) > PAGE_CACHE_SIZE:
            del _pages[next(iter(_pages))]


def _number(requested: str | int | None, position: int | None, per_page: int) -> str | int | None:
    """``?page=mine`` is the viewer's own page (the first if they are not ranked)."""
    if requested == "mine":
        return 1 if position is None else position // per_page + 1
    return requested


def board_page(
    challenge: Challenge,
    revealed: bool,
    requested: str | int | None = None,
    *,
    user_id: int | None = None,
    per_page: int = PER_PAGE,
    strict: bool = False,
) -> BoardPage:
    """Page ``requested`` of ``challenge``'s board in one phase (``"mine"``: the page of
    ``user_id``'s row). Not ``strict`` (the HTML page): a page number out of range or not a
    number gives the nearest page, as Django's ``Paginator.get_page``; ``strict`` (the API)
    raises ``PageNotAnInteger`` or ``EmptyPage``.

    Queries: the board's version; then, unless this process has the page for that version,
    the counts, the enrolled students and the page's rows; two for the viewer's place and one
    for the baseline's, when there are such.
    """
    ranked = RankedStandings(challenge, revealed)
    position = ranked.position_of(user_id) if user_id is not None else None
    number = _number(requested, position, per_page)
    version = board_version(challenge, revealed)
    baseline = reference_baseline(challenge, revealed)
    # RankedStandings pages like a list: Django's stubs ask for a QuerySet-like slice type.
    paginator: Paginator[LeaderboardRow] = Paginator(ranked, per_page)  # type: ignore[arg-type]
    plain = _plain(number)
    # A cached page was a valid page number when it was stored, for the same version.
    hit = None if plain is None else _cached((challenge.pk, revealed, plain, per_page), version)
    if hit is not None and plain is not None:
        rows, ranked._count, ranked._passed, enrolled = hit[2], hit[3], hit[4], hit[5]
        page = Page(rows, plain, paginator)
    else:
        page = paginator.page(number or 1) if strict else paginator.get_page(number)
        rows = list(page.object_list)
        enrolled = _students(challenge).count()
        _keep(
            (challenge.pk, revealed, page.number, per_page),
            (version, time.monotonic(), rows, ranked.count(), ranked.passed(), enrolled),
        )
    shown: list[LeaderboardRow | BaselineRow] = list(rows)
    baseline_row = None if baseline is None else BaselineRow.of(baseline)
    if baseline_row is not None:
        at = ranked.above(baseline_row.score)
        start = (page.number - 1) * per_page
        last = page.number == paginator.num_pages
        if start <= at < start + per_page or (last and at >= start):
            shown.insert(min(at - start, len(shown)), baseline_row)
    return BoardPage(
        page=page,
        rows=shown,
        ranked=ranked.count(),
        passed=ranked.passed(),
        enrolled=enrolled,
        baseline=baseline_row,
        my_position=position,
        per_page=per_page,
    )


def _plain(number: str | int | None) -> int | None:
    """A page number as the cache keys it, None when ``Paginator.get_page`` has to decide."""
    if number is None:
        return 1
    try:
        value = int(number)
    except (TypeError, ValueError):
        return None
    return value if value >= 1 else None


def _students(challenge: Challenge) -> QuerySet[Enrollment]:
    return Enrollment.objects.filter(
        semester_id=challenge.semester_id, role=Enrollment.Role.STUDENT
    ).order_by()


# --- the histogram ------------------------------------------------------------------------


@dataclass(frozen=True)
class Bins:
    """Students per bin of their score on the board, lowest bin first, as drawn."""

    counts: list[int] = field(default_factory=list)
    #: bin edges, in the units drawn (percent where the kind shows percent)
    edges: list[float] = field(default_factory=list)
    #: students whose score is +inf, counted in the top bin
    infinite: int = 0
    #: students with a score, infinities included
    students: int = 0


def histogram_range(
    low: float | None, high: float | None, lines: Sequence[float]
) -> tuple[float, float]:
    """The histogram's range: the finite scores and the lines drawn on it (the pass threshold,
    the baseline), never empty."""
    values = [v for v in (low, high, *lines) if v is not None]
    low, high = min(values), max(values)
    if high - low < 1e-9:
        low, high = low - 1.0, high + 1.0
    return low, high


def score_bins(
    challenge: Challenge, revealed: bool, *, scale: float, lines: Sequence[float] = ()
) -> Bins:
    """The board's scores in ``BINS`` bins, counted by the database: two queries, whatever the
    number of students. ``lines`` (in drawn units) widen the range so they show."""
    ranked = RankedStandings(challenge, revealed).ranked()
    column = _PHASES[revealed]["score"]
    finite = Q(**{f"{column}__lt": math.inf, f"{column}__gt": -math.inf})
    totals = ranked.aggregate(
        students=Count("pk"),
        infinite=Count("pk", filter=Q(**{column: math.inf})),
        negative=Count("pk", filter=Q(**{column: -math.inf})),
        low=Min(column, filter=finite),
        high=Max(column, filter=finite),
    )
    if not totals["students"]:
        return Bins()
    low_value = None if totals["low"] is None else totals["low"] * scale
    high_value = None if totals["high"] is None else totals["high"] * scale
    low, high = histogram_range(low_value, high_value, lines)
    counts = [0] * BINS
    if low_value is not None:
        # numpy's rule: (value - low) * (bins / width), floored; the top edge in the last bin
        position = (F(column) * Value(scale) - Value(low)) * Value(BINS / (high - low))
        binned = Least(
            Greatest(Floor(position, output_field=FloatField()), Value(0.0)), Value(BINS - 1.0)
        )
        for row in ranked.filter(finite).annotate(bin=binned).values("bin").annotate(n=Count("pk")):
            counts[int(row["bin"])] += row["n"]
    counts[-1] += totals["infinite"]
    counts[0] += totals["negative"]  # -inf is clipped into the bottom bin
    width = (high - low) / BINS
    return Bins(
        counts=counts,
        edges=[low + i * width for i in range(BINS)] + [high],
        infinite=totals["infinite"],
        students=totals["students"],
    )
