"""Pictures: the board's histogram of best scores and a segmentation result's figures.

The histogram is public like the board; a result's figures follow the result page's access rule
(``submissions.access``: 404 for anyone else). The sample-mask PNG is drawn by the worker
(``worker.figures``) and only streamed from storage here.
"""

from __future__ import annotations

from uuid import UUID

from django.core.cache import cache
from django.core.files.storage import default_storage
from django.db.models import Max
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.utils.cache import patch_cache_control
from django.views.decorators.http import require_GET

from leaderboard import charts
from leaderboard.access import challenge_public
from leaderboard.models import Challenge
from submissions.access import submission_for_viewer
from submissions.models import Submission

SVG = "image/svg+xml"
#: the board's figure may lag a new result by this much in browsers and proxies
HISTOGRAM_MAX_AGE = 60
#: new results change the key; the expiry only bounds staleness after a deletion
HISTOGRAM_CACHE_SECONDS = 3600


def histogram_cache_key(challenge: Challenge) -> str:
    """Changes whenever a result arrives or is re-graded, or the threshold moves."""
    # Query: the latest finish time of the challenge's graded submissions (index
    # sub_chal_status_finished: one index probe, not a scan of every result).
    latest = Submission.objects.filter(
        challenge=challenge, status=Submission.Status.GRADED
    ).aggregate(latest=Max("finished_at"))["latest"]
    stamp = latest.isoformat() if latest else "-"
    return f"histogram:{challenge.pk}:{challenge.threshold!r}:{stamp}"


def challenge_best_scores(challenge: Challenge) -> list[float]:
    """Each enrolment's best graded score for the challenge, in one aggregate query."""
    rows = (
        Submission.objects.filter(
            challenge=challenge, status=Submission.Status.GRADED, score__isnull=False
        )
        .values("enrollment")
        .annotate(best=Max("score"))
        .values_list("best", flat=True)
    )
    return [float(best) for best in rows]


def challenge_histogram_svg(challenge: Challenge) -> bytes:
    key = histogram_cache_key(challenge)
    svg = cache.get(key)
    if svg is None:
        percent = challenge.kind.score_display == "percent"
        svg = charts.best_score_histogram(
            challenge_best_scores(challenge),
            challenge.threshold,
            percent=percent,
            label="best accuracy" if percent else "best score",
        ).svg
        cache.set(key, svg, HISTOGRAM_CACHE_SECONDS)
    return bytes(svg)


@require_GET
def challenge_histogram(request: HttpRequest, slug: str) -> HttpResponse:
    """Public, like the board."""
    challenge = challenge_public(slug)
    response = HttpResponse(challenge_histogram_svg(challenge), content_type=SVG)
    patch_cache_control(response, public=True, max_age=HISTOGRAM_MAX_AGE)
    return response


def _graded_segmentation(request: HttpRequest, pk: UUID) -> Submission:
    submission = submission_for_viewer(request.user, pk)
    if submission.status != Submission.Status.GRADED or submission.challenge.task != "segmentation":
        raise Http404("no figures for this submission")
    return submission


@require_GET
def submission_per_class(request: HttpRequest, pk: UUID) -> HttpResponse:
    """Per-class accuracy and IoU of a graded segmentation submission."""
    from eval_data.kinds.segmentation import LABEL_COLOURS

    submission = _graded_segmentation(request, pk)
    accuracy = submission.metrics.get("per_class_accuracy")
    iou = submission.metrics.get("per_class_iou")
    names = [name for class_id, name, _ in LABEL_COLOURS if class_id >= 0]
    if not (isinstance(accuracy, list) and isinstance(iou, list)):
        raise Http404("no per-class figures for this submission")
    if not len(accuracy) == len(iou) == len(names):
        raise Http404("no per-class figures for this submission")
    svg, _ = charts.per_class_bars(names, accuracy, iou)
    response = HttpResponse(svg, content_type=SVG)
    patch_cache_control(response, private=True, max_age=300)
    return response


@require_GET
def submission_samples(request: HttpRequest, pk: UUID) -> FileResponse:
    """Predicted masks on public sample images, drawn by the worker after grading."""
    submission = _graded_segmentation(request, pk)
    name = submission.figures.get("samples") if isinstance(submission.figures, dict) else None
    if not isinstance(name, str) or not name:
        raise Http404("no sample figure for this submission")
    try:
        stream = default_storage.open(name, "rb")
    except FileNotFoundError as exc:
        raise Http404("no sample figure for this submission") from exc
    response = FileResponse(stream, content_type="image/png")
    patch_cache_control(response, private=True, max_age=300)
    return response
