"""Grade one model file against one hidden test set: the path the worker and the CLI share."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import eval_data
from grader import __version__, formats
from grader.checks import prepare_upload
from grader.errors import PlatformError
from grader.limits import Limits
from grader.runner import Job, Progress, Runner
from grader.tasks import get_task

_cache_lock = threading.Lock()
_cache: dict[tuple[str, str], tuple[int, eval_data.Dataset]] = {}


def load_dataset(task: str, root: Path) -> eval_data.Dataset:
    """Load a hidden test set once per process; re-read when its manifest changes."""
    root = Path(root).resolve()
    key = (task, str(root))
    manifest = root / "manifest.json"
    try:
        stamp = manifest.stat().st_mtime_ns
    except FileNotFoundError:
        stamp = -1
    with _cache_lock:
        hit = _cache.get(key)
        if hit and hit[0] == stamp:
            return hit[1]
    try:
        dataset = eval_data.load(root, task)
    except eval_data.DatasetError as exc:
        raise PlatformError("dataset", "the hidden test set is not available", str(exc)) from exc
    with _cache_lock:
        _cache[key] = (stamp, dataset)
    return dataset


@dataclass(frozen=True)
class Evaluation:
    task: str
    format: str
    score: float
    passed: bool
    threshold: float
    metrics: dict[str, Any]
    dataset_hash: str
    params: int
    seconds: float
    runner: str
    grader_version: str = __version__
    log: str = field(default="", repr=False)

    def to_json(self) -> dict[str, Any]:
        """The result as plain JSON values; an infinite score becomes the string "Infinity"."""
        data = {
            **{k: json_number(v) for k, v in self.metrics.items()},
            "passed": self.passed,
            "threshold": self.threshold,
            "task": self.task,
            "format": self.format,
            "params": self.params,
            "dataset_hash": self.dataset_hash,
            "grader_version": self.grader_version,
            "runner": self.runner,
        }
        return data


def json_number(value: Any) -> Any:
    if isinstance(value, float) and math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def evaluate(
    model_path: Path,
    task: str,
    data_dir: Path,
    runner: Runner,
    *,
    threshold: float | None = None,
    limits: Limits | None = None,
    allowed_formats: tuple[str, ...] = formats.DEFAULT_FORMATS,
    device: str = "cpu",
    batch_size: int = 32,
    progress: Progress | None = None,
    on_loaded: Callable[[eval_data.Dataset], None] | None = None,
) -> Evaluation:
    """Check, run and score ``model_path``; raise ``GradingError`` or ``PlatformError``."""
    kind = get_task(task)
    limits = limits or Limits()
    threshold = kind.default_threshold if threshold is None else threshold
    fmt, model = prepare_upload(
        Path(model_path), allowed_formats=allowed_formats, max_bytes=limits.max_file_bytes
    )
    dataset = load_dataset(task, data_dir)
    if on_loaded:
        on_loaded(dataset)
    job = Job(
        task=task,
        format=fmt,
        model=model,
        device=device,
        batch_size=batch_size,
        limits=limits,
    )
    per_sample = math.prod(kind.prediction_shape) * 8
    prediction = runner.predict(job, dataset.inputs, len(dataset) * per_sample + 4096, progress)
    predictions = kind.check_predictions(prediction.predictions, len(dataset))
    metrics = kind.compute_metrics(predictions, dataset.labels)
    return Evaluation(
        task=task,
        format=fmt,
        score=float(metrics[kind.score_key]),
        passed=kind.passed(metrics, threshold),
        threshold=threshold,
        metrics=metrics,
        dataset_hash=dataset.dataset_hash,
        params=prediction.params,
        seconds=prediction.seconds,
        runner=runner.name,
        log=prediction.log,
    )
