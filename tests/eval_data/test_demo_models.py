"""The demo models: exported programs that pass or fail the default thresholds on fresh data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import eval_data
from eval_data import load
from eval_data.manifest import write_manifest
from grader.kinds import get_kind, kind_names

TEST_SEED = 1234
#: test set sizes per kind: enough images for a stable score, few enough to be quick
TEST_COUNTS = {"keypoints": 200, "segmentation": 40, "classification": 200}
NAMES = [f"{kind}_{expected}" for kind in kind_names() for expected in ("pass", "fail")]


@pytest.fixture(scope="module")
def models(demo_models: dict[str, Path]) -> dict[str, Path]:
    """Built once per session (tests/conftest.py), shared with the end-to-end tests."""
    return demo_models


@pytest.fixture(scope="module")
def test_sets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    roots = {}
    for task in kind_names():
        count = TEST_COUNTS[task]
        root = tmp_path_factory.mktemp(task)
        eval_data.get_kind(task).synth(root, count, TEST_SEED)
        write_manifest(root, task)
        roots[task] = root
    return roots


def _metrics(path: Path, task: str, root: Path) -> dict[str, float]:
    """Run the program in this process and score it the way the grader's parent does."""
    kind = get_kind(task)
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
    params = kind.params_for(dataset)
    compact, n_nan, n_inf = kind.check_batch(raw, len(dataset), params)
    assert n_nan == n_inf == 0
    return kind.compute_metrics(compact, dataset)


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
    task = get_kind(task_name)
    metrics = _metrics(models[name], task_name, test_sets[task_name])
    passed = task.passed(metrics, task.default_threshold)
    assert passed == (expected == "pass"), metrics[task.score_key]
    if expected == "fail":
        # Well below the threshold, not just under it: the demo shows a clear "not passed".
        assert metrics[task.score_key] < 0.6 * task.default_threshold


def test_parameter_counts_within_course_limits(models: dict[str, Path]) -> None:
    for path in models.values():
        program = torch.export.load(str(path))
        params = sum(p.numel() for p in program.module().parameters())
        assert params < 5_000_000
