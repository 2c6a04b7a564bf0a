"""The demo models: exported programs that pass or fail the default thresholds on fresh data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from eval_data import get_kind, load
from eval_data.manifest import write_manifest
from grader.tasks import get_task
from grader.tasks.keypoints import keypoint_metrics
from grader.tasks.segmentation import segmentation_metrics

TEST_SEED = 1234
TEST_COUNTS = {"keypoints": 200, "segmentation": 40}
NAMES = ["keypoints_pass", "keypoints_fail", "segmentation_pass", "segmentation_fail"]


@pytest.fixture(scope="module")
def models(demo_models: dict[str, Path]) -> dict[str, Path]:
    """Built once per session (tests/conftest.py), shared with the end-to-end tests."""
    return demo_models


@pytest.fixture(scope="module")
def test_sets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    roots = {}
    for task, count in TEST_COUNTS.items():
        root = tmp_path_factory.mktemp(task)
        get_kind(task).synth(root, count, TEST_SEED)
        write_manifest(root, task)
        roots[task] = root
    return roots


def _metrics(path: Path, task: str, root: Path) -> dict[str, float]:
    dataset = load(root, task)
    program = torch.export.load(str(path)).module()
    outputs: list[np.ndarray] = []
    start, sizes = 0, [16, 5, 1]  # the batch dimension is dynamic, down to a single image
    with torch.no_grad():
        while start < len(dataset):
            size = sizes[len(outputs) % len(sizes)]
            outputs.append(program(torch.from_numpy(dataset.inputs[start : start + size])).numpy())
            start += size
    raw = np.concatenate(outputs)
    if task == "keypoints":
        assert raw.shape == (len(dataset), 30)
        return keypoint_metrics(raw, dataset.labels)
    assert raw.shape == (len(dataset), 23, 240, 240)
    return segmentation_metrics(raw.argmax(axis=1).astype(np.uint8), dataset.labels)


def test_manifest_file_describes_every_model(models: dict[str, Path]) -> None:
    meta = json.loads((next(iter(models.values())).parent / "demo_models.json").read_text())
    assert set(meta) == set(models) == set(NAMES)
    for name, path in models.items():
        assert meta[name]["task"] == name.split("_")[0]
        assert meta[name]["expected"] == name.split("_")[1]
        assert path.name == meta[name]["file"]
        assert path.stat().st_size < 20 * 1024 * 1024


@pytest.mark.parametrize("name", NAMES)
def test_models_pass_or_fail_as_labelled(
    models: dict[str, Path], test_sets: dict[str, Path], name: str
) -> None:
    task_name, expected = name.split("_")
    task = get_task(task_name)
    metrics = _metrics(models[name], task_name, test_sets[task_name])
    passed = task.passed(metrics, task.default_threshold)
    assert passed == (expected == "pass"), metrics[task.score_key]
    if task_name == "keypoints" and expected == "fail":
        assert metrics["score"] < 60
    if task_name == "segmentation" and expected == "fail":
        assert metrics["accuracy"] < 0.5


def test_parameter_counts_within_course_limits(models: dict[str, Path]) -> None:
    for path in models.values():
        program = torch.export.load(str(path))
        params = sum(p.numel() for p in program.module().parameters())
        assert params < 5_000_000
