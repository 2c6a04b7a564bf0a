"""The worker's part of a grading: this process's runner, and evaluating a claimed submission.

``evaluate_submission`` fetches the upload from storage (checking its sha256), runs the grader
with the challenge's rules and limits in the sandbox, lets the kind draw its pictures on public
samples, and returns a ``GradingOutcome``. It writes nothing: the task records the outcome
(``submissions.results``). Anything unexpected is the platform's fault, never the student's.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import tempfile
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from importlib import metadata
from pathlib import Path

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.files.storage import Storage

import eval_data
from courses.models import Challenge
from grader.errors import GraderError, GradingError, PlatformError
from grader.evaluate import Evaluation, evaluate, sample_picture
from grader.limits import MB, Limits
from grader.runners import Runner, make_runner
from grader.sandbox.bwrap import gpu_index
from grader.sandbox.job import MIN_JOB_UID
from submissions.models import Submission
from submissions.results import GradingOutcome, Worker
from submissions.storage import store_errors

logger = logging.getLogger(__name__)

_runners: dict[bool, Runner] = {}


def get_runner() -> Runner:
    """This process's runner: the sandbox unless ``GRADER_SANDBOX`` is off (DEBUG only).

    Fails closed: a host that cannot sandbox raises ``PlatformError`` for every job, which is
    recorded and retried (perhaps by another worker), and never grades unsandboxed.
    """
    sandboxed = bool(settings.GRADER_SANDBOX)
    if sandboxed not in _runners:
        try:
            _runners[sandboxed] = make_runner(
                sandboxed=sandboxed,
                uid=sandbox_uid(),
                gpu=gpu_index(settings.GRADER_DEVICE),
            )
        except ImportError as exc:
            raise PlatformError(
                "sandbox_unavailable", "this worker cannot start the sandbox", str(exc)
            ) from exc
    return _runners[sandboxed]


def sandbox_uid() -> int:
    """This process's job uid: ``GRADER_SANDBOX_UID`` less its index in the worker's pool, so
    two pool processes never share the kernel's per-uid process budget."""
    from billiard.process import current_process

    index = getattr(current_process(), "index", None) or 0
    uid = int(settings.GRADER_SANDBOX_UID) - int(index)
    if uid < MIN_JOB_UID:
        raise PlatformError(
            "sandbox_unavailable",
            "this worker cannot start the sandbox",
            f"GRADER_SANDBOX_UID={settings.GRADER_SANDBOX_UID} leaves pool process {index}"
            f" the uid {uid}, below {MIN_JOB_UID}",
        )
    return uid


@cache
def torch_version() -> str:
    # The installed distribution's version (with its local tag, e.g. "+cpu"), read without
    # paying for ``import torch`` in this process: the model runs in the runner's child.
    try:
        return metadata.version("torch")
    except metadata.PackageNotFoundError:
        return "not installed"


def this_worker(hostname: str | None = None) -> Worker:
    from worker.heartbeat import process_name

    return Worker(
        host=hostname or socket.gethostname(),
        device=settings.GRADER_DEVICE,
        torch_version=torch_version(),
        name=process_name(hostname),
    )


def limits_for(submission: Submission) -> Limits:
    return challenge_limits(submission.challenge)


def challenge_limits(challenge: Challenge) -> Limits:
    threads = job_threads()
    return Limits(
        max_params=challenge.max_params,
        max_file_bytes=challenge.max_file_bytes,
        memory_bytes=challenge.memory_mb * MB,
        # CPU time tracks wall time per thread, with room for loading the model.
        cpu_seconds=max(60, 2 * challenge.time_limit_seconds) * threads,
        wall_seconds=float(challenge.time_limit_seconds),
        threads=threads,
    )


def job_threads() -> int:
    """Threads one job's model may use: ``GRADER_THREADS_PER_JOB``, or this host's cores (those
    this process may run on) shared by the worker's pool processes. The job sets them itself,
    after the sandbox forked it (``grader.formats.load_model``): the warm zygote stays
    single-threaded, so forking never meets a busy OpenMP pool."""
    if settings.GRADER_THREADS_PER_JOB:
        return int(settings.GRADER_THREADS_PER_JOB)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 1) // max(1, int(settings.CELERY_WORKER_CONCURRENCY)))


def data_dir_for(submission: Submission) -> Path:
    return challenge_data_dir(submission.challenge)


def challenge_data_dir(challenge: Challenge) -> Path:
    root = Path(settings.GRADER_DATA_ROOT).resolve()
    path = (root / challenge.data_dir).resolve()
    if not path.is_relative_to(root):
        raise PlatformError(
            "dataset", "the hidden test set is not available", f"{path} escapes {root}"
        )
    return path


CHUNK_BYTES = 1024 * 1024


def stored_chunks(storage: Storage, name: str) -> Iterator[bytes]:
    """The stored object's bytes as they arrive. From S3 straight off the response body: the
    storage's own ``open`` would first spool the whole object into another temp file."""
    bucket = getattr(storage, "bucket", None)
    if bucket is not None:
        key = storage._normalize_name(name)  # type: ignore[attr-defined]
        body = bucket.Object(key).get()["Body"]
        try:
            yield from body.iter_chunks(CHUNK_BYTES)
        finally:
            body.close()
        return
    with storage.open(name, "rb") as src:
        yield from src.chunks(CHUNK_BYTES)


@contextmanager
def fetched(submission: Submission) -> Iterator[Path]:
    """The upload streamed from storage (maybe remote) into a private temp dir, checksum verified.

    The one copy on this host lives only while the job runs: the directory goes with the
    context, whatever happens in it.
    """
    with tempfile.TemporaryDirectory(prefix="grading-") as tmp:
        path = Path(tmp) / "model.bin"
        digest = hashlib.sha256()
        try:
            with path.open("wb") as dst:
                for chunk in stored_chunks(submission.file.storage, submission.file.name or ""):
                    digest.update(chunk)
                    dst.write(chunk)
        except (OSError, *store_errors()) as exc:  # type: ignore[misc]
            raise PlatformError("storage", "the uploaded file could not be read", str(exc)) from exc
        if digest.hexdigest() != submission.sha256:
            raise PlatformError(
                "storage_checksum",
                "the uploaded file changed in storage",
                f"sha256 {digest.hexdigest()} != recorded {submission.sha256}",
            )
        yield path


@contextmanager
def _caught(outcome: GradingOutcome) -> Iterator[None]:
    """Record what stopped an evaluation on ``outcome`` instead of raising it."""
    try:
        yield
    except GraderError as exc:
        outcome.error = exc
    except SoftTimeLimitExceeded:
        # The model's own wall clock ends well before this: the host is stuck, not the model.
        outcome.error = PlatformError(
            "soft_time_limit", "grading took longer than the task's time limit"
        )
    except Exception:
        # A bug or an unexpected host failure: never the student's fault. Retried, and in
        # the end failed without counting against the quota.
        outcome.error = PlatformError(
            "internal", "grading failed unexpectedly", traceback.format_exc()
        )


def _evaluate(
    challenge: Challenge, path: Path, runner: Runner, worker: Worker, outcome: GradingOutcome
) -> Evaluation:
    """Grade the model file at ``path`` under the challenge's rules and limits; the outcome
    learns the test set's hash as soon as it is loaded."""

    def on_loaded(dataset: eval_data.Dataset) -> None:
        outcome.dataset_hash = dataset.dataset_hash

    return evaluate(
        path,
        challenge.task,
        challenge_data_dir(challenge),
        runner,
        threshold=challenge.threshold,
        score_key=challenge.score_key,
        public_fraction=challenge.public_fraction,
        limits=challenge_limits(challenge),
        allowed_formats=tuple(challenge.allowed_formats),
        device=worker.device,
        batch_size=settings.GRADER_BATCH_SIZE,
        on_loaded=on_loaded,
    )


def evaluate_submission(
    submission: Submission, worker: Worker, *, pictures: bool = True
) -> GradingOutcome:
    """Grade a submission's file with its challenge's rules; never raises.

    ``pictures``: also let the kind draw its pictures on the public samples (grading does,
    re-grading does not: its results are not published yet).
    """
    outcome = GradingOutcome()
    with _caught(outcome):
        runner = get_runner()
        outcome.runner = runner.name
        with fetched(submission) as path:
            outcome.evaluation = _evaluate(submission.challenge, path, runner, worker, outcome)
            if pictures:
                outcome.pictures = _pictures(submission, path, runner, worker)
    return outcome


def _pictures(
    submission: Submission, path: Path, runner: Runner, worker: Worker
) -> dict[str, bytes]:
    """The kind's picture of the model on public samples; best effort, the grade stands."""
    challenge = submission.challenge
    try:
        png = sample_picture(
            path,
            challenge.task,
            data_dir_for(submission),
            runner,
            limits=limits_for(submission),
            allowed_formats=tuple(challenge.allowed_formats),
            device=worker.device,
        )
    except (GradingError, PlatformError, eval_data.DatasetError, OSError) as exc:
        logger.warning("submission %s: no sample picture: %s", submission.pk, exc)
        return {}
    except Exception:
        logger.warning("submission %s: the sample picture failed", submission.pk, exc_info=True)
        return {}
    return {} if png is None else {"samples": png}


def evaluate_reference(challenge: Challenge, worker: Worker) -> GradingOutcome:
    """Grade the challenge's reference model exactly as a student's upload; never raises."""
    outcome = GradingOutcome()
    with _caught(outcome):
        runner = get_runner()
        outcome.runner = runner.name
        with tempfile.TemporaryDirectory(prefix="reference-") as tmp:
            path = Path(tmp) / "model.bin"
            try:
                with challenge.reference_model.open("rb") as src, path.open("wb") as dst:
                    for chunk in src.chunks():
                        dst.write(chunk)
            except (OSError, ValueError) as exc:
                raise PlatformError(
                    "storage", "the reference model could not be read", str(exc)
                ) from exc
            outcome.evaluation = _evaluate(challenge, path, runner, worker, outcome)
    return outcome
