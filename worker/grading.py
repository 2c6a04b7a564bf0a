"""Grade one claimed submission: fetch the file, run the grader, record the outcome.

The task in ``worker.tasks`` stays thin; this is the work. Every attempt leaves a ``GradingRun``.
A ``GradingError`` (the model's fault) is final. Anything else is the platform's fault: recorded
as a ``PlatformError`` and re-raised so the task can retry or give up.
"""

from __future__ import annotations

import hashlib
import logging
import socket
import tempfile
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

import eval_data
from grader.errors import GradingError, PlatformError
from grader.evaluate import Evaluation, evaluate
from grader.limits import MB, Limits
from grader.runner import Runner
from submissions.models import GradingRun, Submission
from submissions.regrade import (
    regrade_run_record_platform_error,
    regrade_run_record_rejection,
    regrade_run_record_result,
)
from submissions.services import (
    grading_run_start,
    submission_record_platform_error,
    submission_record_rejection,
    submission_record_result,
)
from worker.figures import submission_figures_draw

logger = logging.getLogger(__name__)


@cache
def torch_version() -> str:
    # The installed distribution's version (with its local tag, e.g. "+cpu"), read without
    # paying for ``import torch`` in this process: the model runs in the runner's child.
    try:
        return metadata.version("torch")
    except metadata.PackageNotFoundError:
        return "not installed"


@dataclass(frozen=True)
class WorkerInfo:
    host: str
    device: str

    @classmethod
    def current(cls, hostname: str | None = None) -> WorkerInfo:
        return cls(host=hostname or socket.gethostname(), device=settings.GRADER_DEVICE)


def limits_for(submission: Submission) -> Limits:
    challenge = submission.challenge
    return Limits(
        max_params=challenge.max_params,
        max_file_bytes=challenge.max_file_bytes,
        memory_bytes=challenge.memory_mb * MB,
        # One thread: CPU time tracks wall time, with room for loading the model.
        cpu_seconds=max(60, 2 * challenge.time_limit_seconds),
        wall_seconds=float(challenge.time_limit_seconds),
    )


def data_dir_for(submission: Submission) -> Path:
    root = Path(settings.GRADER_DATA_ROOT).resolve()
    path = (root / submission.challenge.data_dir).resolve()
    if not path.is_relative_to(root):
        raise PlatformError(
            "dataset", "the hidden test set is not available", f"{path} escapes {root}"
        )
    return path


@contextmanager
def fetched(submission: Submission) -> Iterator[Path]:
    """The upload copied from storage (maybe remote) to a private temp file, checksum verified."""
    with tempfile.TemporaryDirectory(prefix="grading-") as tmp:
        path = Path(tmp) / "model.bin"
        digest = hashlib.sha256()
        try:
            with submission.file.open("rb") as src, path.open("wb") as dst:
                for chunk in src.chunks():
                    digest.update(chunk)
                    dst.write(chunk)
        except OSError as exc:
            raise PlatformError("storage", "the uploaded file could not be read", str(exc)) from exc
        if digest.hexdigest() != submission.sha256:
            raise PlatformError(
                "storage_checksum",
                "the uploaded file changed in storage",
                f"sha256 {digest.hexdigest()} != recorded {submission.sha256}",
            )
        yield path


def evaluate_submission(
    submission: Submission, run: GradingRun, get_runner: Callable[[], Runner], worker: WorkerInfo
) -> tuple[Evaluation, Runner]:
    """Run the grader on a submission's file with its challenge's limits: shared by grading and
    re-grading. ``run`` learns the runner and the dataset hash as they become known.

    Raises ``GradingError`` (the model's fault) or ``PlatformError`` (anything else).
    """
    challenge = submission.challenge

    def on_loaded(dataset: eval_data.Dataset) -> None:
        run.dataset_hash = dataset.dataset_hash

    try:
        runner = get_runner()
        run.runner = runner.name
        with fetched(submission) as path:
            evaluation = evaluate(
                path,
                challenge.task,
                data_dir_for(submission),
                runner,
                threshold=challenge.threshold,
                limits=limits_for(submission),
                allowed_formats=tuple(challenge.allowed_formats),
                device=worker.device,
                batch_size=settings.GRADER_BATCH_SIZE,
                on_loaded=on_loaded,
            )
    except (GradingError, PlatformError):
        raise
    except SoftTimeLimitExceeded as exc:
        # The model's own wall clock ends well before this: the host is stuck, not the model.
        raise PlatformError(
            "soft_time_limit", "grading took longer than the task's time limit"
        ) from exc
    except Exception as exc:
        # A bug or an unexpected host failure: never the student's fault. Retried, and in
        # the end failed without counting against the quota.
        raise PlatformError(
            "internal", "grading failed unexpectedly", traceback.format_exc()
        ) from exc
    return evaluation, runner


def grade_claimed(
    submission: Submission,
    get_runner: Callable[[], Runner],
    worker: WorkerInfo,
    *,
    last_try: bool,
) -> None:
    """Grade a submission this worker has claimed (status running) and record the outcome.

    Raises ``PlatformError`` after recording it; ``last_try`` fails the submission for good
    (without counting against the quota) instead of putting it back in the queue.
    """
    run = grading_run_start(
        submission,
        worker_host=worker.host,
        device=worker.device,
        torch_version=torch_version(),
        runner="",
    )
    logger.info(
        "submission %s: grading attempt %d on %s (%s)",
        submission.pk,
        submission.attempts,
        worker.host,
        worker.device,
    )

    try:
        evaluation, runner = evaluate_submission(submission, run, get_runner, worker)
    except GradingError as exc:
        submission_record_rejection(submission, run, exc)
        return
    except PlatformError as exc:
        submission_record_platform_error(submission, run, exc, give_up=last_try)
        raise
    if submission_record_result(submission, run, evaluation):
        # After the grade is recorded, best effort: a failure here is logged, never the grade's.
        submission_figures_draw(
            submission,
            runner,
            fetch=fetched,
            hidden_dir=data_dir_for(submission),
            limits=limits_for(submission),
            device=worker.device,
        )


def regrade_claimed(
    run: GradingRun, get_runner: Callable[[], Runner], worker: WorkerInfo, *, last_try: bool
) -> None:
    """Grade a claimed re-grade attempt; its outcome goes on ``run`` only (see
    ``submissions.regrade``). Raises ``PlatformError`` after recording it, as ``grade_claimed``."""
    run.worker_host = worker.host[:200]
    run.device = worker.device
    run.torch_version = torch_version()[:64]
    GradingRun.objects.filter(pk=run.pk).update(
        worker_host=run.worker_host, device=run.device, torch_version=run.torch_version
    )
    logger.info("re-grade %s: submission %s on %s", run.batch_id, run.submission_id, worker.host)
    try:
        evaluation, _ = evaluate_submission(run.submission, run, get_runner, worker)
    except GradingError as exc:
        regrade_run_record_rejection(run, exc)
        return
    except PlatformError as exc:
        regrade_run_record_platform_error(run, exc, give_up=last_try)
        raise
    regrade_run_record_result(run, evaluation)
