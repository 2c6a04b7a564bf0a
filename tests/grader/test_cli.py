"""``python -m grader evaluate|check`` as a subprocess, run from the repo root like the README says.

Datasets come from eval_data's synthetic generator in the course's formats; models are tiny
untrained programs exported at test time, or the demo models (classification). Every run but
the sandbox tests uses ``--no-sandbox`` (a plain child process); the scores are checked against
the same model run in this process.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

import eval_data
from eval_data.kinds.classification import CLASS_NAMES
from eval_data.manifest import write_manifest
from grader.kinds import get_kind

ROOT = Path(__file__).resolve().parents[2]
KEYPOINT_COUNT = 20
SEGMENTATION_COUNT = 4
COMMON_KEYS = {"task", "format", "dataset_hash", "grader_version", "passed", "count"}
KEYPOINT_KEYS = COMMON_KEYS | {"score", "mse"}
SEGMENTATION_KEYS = COMMON_KEYS | {
    "accuracy",
    "pooled_accuracy",
    "per_class_accuracy",
    "per_class_iou",
    "skipped_void_only",
}
CLASSIFICATION_COUNT = 60
CLASSIFICATION_KEYS = COMMON_KEYS | {
    "accuracy",
    "per_class_accuracy",
    "confusion",
    "threshold",
    "params",
    "runner",
}


def keypoint_model() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 4, 4, stride=4), nn.ReLU(), nn.AvgPool2d(8), nn.Flatten(), nn.Linear(36, 30)
    )


def segmentation_model() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 23, 1))


@dataclass(frozen=True)
class Setup:
    keypoints_data: Path
    segmentation_data: Path
    keypoints_pt2: Path
    segmentation_pt2: Path
    state_dict: Path
    #: what the grader should report, computed in this process, by task
    expected: dict[str, dict[str, Any]]


def _export(model: nn.Module, example: torch.Tensor, path: Path) -> Path:
    batch = torch.export.Dim("batch")
    program = torch.export.export(model, (example,), dynamic_shapes=({0: batch},))
    torch.export.save(program, path)
    return path


def _in_process_metrics(task: str, model: nn.Module, data: Path) -> dict[str, Any]:
    kind = get_kind(task)
    dataset = eval_data.load(data, task)
    with torch.no_grad():
        raw = model(torch.from_numpy(dataset.inputs)).numpy()
    compact, _, _ = kind.check_batch(raw, len(dataset), kind.params_for(dataset))
    return {**kind.compute_metrics(compact, dataset), "dataset_hash": dataset.dataset_hash}


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Setup:
    root = tmp_path_factory.mktemp("cli")
    data = {"keypoints": root / "kp-data", "segmentation": root / "seg-data"}
    for task, count in (("keypoints", KEYPOINT_COUNT), ("segmentation", SEGMENTATION_COUNT)):
        eval_data.get_kind(task).synth(data[task], count, 7)
        write_manifest(data[task], task)
    torch.manual_seed(0)
    kp, seg = keypoint_model().eval(), segmentation_model().eval()
    torch.save(kp.state_dict(), root / "weights.pt")
    return Setup(
        keypoints_data=data["keypoints"],
        segmentation_data=data["segmentation"],
        keypoints_pt2=_export(kp, torch.rand(2, 1, 96, 96), root / "kp.pt2"),
        segmentation_pt2=_export(seg, torch.rand(2, 3, 240, 240), root / "seg.pt2"),
        state_dict=root / "weights.pt",
        expected={
            "keypoints": _in_process_metrics("keypoints", kp, data["keypoints"]),
            "segmentation": _in_process_metrics("segmentation", seg, data["segmentation"]),
        },
    )


def run_grader(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """``.venv/bin/python -m grader ...`` from the repo root, with no PYTHONPATH help."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "GRADER_DEVICE")}
    return subprocess.run(
        [sys.executable, "-m", "grader", *map(str, args)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def only_json(stdout: str) -> dict[str, Any]:
    """The single JSON object stdout must consist of."""
    lines = stdout.strip().splitlines()
    assert len(lines) == 1, f"expected one line of JSON, got: {stdout!r}"
    data = json.loads(lines[0])
    assert isinstance(data, dict)
    return data


def test_it_prints_one_json_object_with_the_keypoint_figures(setup: Setup) -> None:
    result = run_grader(
        "evaluate", setup.keypoints_pt2, "--challenge", "keypoints",
        "--data", setup.keypoints_data, "--json", "--no-sandbox",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    data = only_json(result.stdout)
    assert data.keys() >= KEYPOINT_KEYS
    expected = setup.expected["keypoints"]
    assert data["task"] == "keypoints"
    assert data["format"] == "pt2"
    assert data["count"] == KEYPOINT_COUNT
    assert data["dataset_hash"] == expected["dataset_hash"]
    assert abs(data["mse"] - expected["mse"]) < 1e-6
    assert math.isclose(data["score"], 1 / (2 * data["mse"]), rel_tol=1e-9)
    assert data["passed"] is (data["score"] >= 100)
    assert data["grader_version"]
    assert data["runner"] == "process"


def test_it_prints_one_json_object_with_the_segmentation_figures(setup: Setup) -> None:
    result = run_grader(
        "evaluate", setup.segmentation_pt2, "--challenge", "segmentation",
        "--data", setup.segmentation_data, "--json", "--no-sandbox", "--threshold", "0",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    data = only_json(result.stdout)
    assert data.keys() >= SEGMENTATION_KEYS
    expected = setup.expected["segmentation"]
    assert data["task"] == "segmentation"
    assert data["count"] + data["skipped_void_only"] == SEGMENTATION_COUNT
    assert abs(data["accuracy"] - expected["accuracy"]) < 1e-6
    assert abs(data["pooled_accuracy"] - expected["pooled_accuracy"]) < 1e-6
    for key in ("per_class_accuracy", "per_class_iou"):
        assert len(data[key]) == 23
        assert [v is None for v in data[key]] == [v is None for v in expected[key]]
        got = np.array([np.nan if v is None else v for v in data[key]])
        want = np.array([np.nan if v is None else v for v in expected[key]])
        np.testing.assert_allclose(got, want, atol=1e-9)
    assert data["passed"] is True  # threshold 0
    assert data["threshold"] == 0


def test_it_exits_2_with_error_and_code_for_a_rejected_file(setup: Setup) -> None:
    result = run_grader(
        "evaluate", setup.state_dict, "--challenge", "keypoints",
        "--data", setup.keypoints_data, "--json", "--no-sandbox",
    )  # fmt: skip
    assert result.returncode == 2
    data = only_json(result.stdout)
    assert set(data) == {"error", "code"}
    assert data["code"] == "state_dict_only"


def test_it_exits_2_when_the_model_output_does_not_fit_the_challenge(setup: Setup) -> None:
    result = run_grader(
        "evaluate", setup.keypoints_pt2, "--challenge", "segmentation",
        "--data", setup.segmentation_data, "--json", "--no-sandbox",
    )  # fmt: skip
    # The keypoint model cannot take 3-channel images: it raises inside the model process.
    assert result.returncode == 2, result.stderr
    data = only_json(result.stdout)
    assert set(data) == {"error", "code"}
    assert data["code"] == "model_error"
    assert data["error"].startswith("your model raised")


def test_it_exits_3_when_the_dataset_has_no_manifest(setup: Setup, tmp_path: Path) -> None:
    eval_data.get_kind("keypoints").synth(tmp_path, 2, 1)
    result = run_grader(
        "evaluate", setup.keypoints_pt2, "--challenge", "keypoints",
        "--data", tmp_path, "--json", "--no-sandbox",
    )  # fmt: skip
    assert result.returncode == 3
    data = only_json(result.stdout)
    assert data["code"] == "dataset"


def test_it_checks_a_model_without_data(setup: Setup) -> None:
    result = run_grader(
        "check", setup.segmentation_pt2, "--challenge", "segmentation", "--no-sandbox"
    )
    assert result.returncode == 0, result.stderr
    assert "torch.export program" in result.stdout
    assert re.search(r"^parameters:\s+431$", result.stdout, re.MULTILINE)
    assert re.search(r"^output shape:\s+OK", result.stdout, re.MULTILINE)


def test_it_checks_a_model_without_data_as_json(setup: Setup) -> None:
    result = run_grader(
        "check", setup.segmentation_pt2, "--challenge", "segmentation", "--no-sandbox", "--json"
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert only_json(result.stdout) == {
        "task": "segmentation",
        "format": "pt2",
        "params": 431,
        "output_shape": "ok",
        "score": None,
    }


def test_it_checks_a_model_on_validation_data_with_a_score_and_verdict(setup: Setup) -> None:
    result = run_grader(
        "check", setup.keypoints_pt2, "--challenge", "keypoints",
        "--data", setup.keypoints_data, "--no-sandbox",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    expected = setup.expected["keypoints"]
    assert "torch.export program" in result.stdout
    assert re.search(rf"^count:\s+{KEYPOINT_COUNT}$", result.stdout, re.MULTILINE)
    score = 1 / (2 * expected["mse"])
    verdict = "PASSED" if score >= 100 else "NOT PASSED"
    assert f"{verdict}: score" in result.stdout
    assert ", threshold 100 (" in result.stdout
    assert f"{KEYPOINT_COUNT}/{KEYPOINT_COUNT}" in result.stderr  # the progress bar


@pytest.mark.sandbox
def test_it_never_grades_unsandboxed_unless_asked(setup: Setup) -> None:
    """Without --no-sandbox the CLI grades in the sandbox: this suite's machines have one (a
    host without it refuses with ``sandbox_unavailable``, see ``test_sandbox``, and the CLI
    turns every such host problem into exit status 3, as for a missing test set above)."""
    result = run_grader(
        "evaluate", setup.keypoints_pt2, "--challenge", "keypoints",
        "--data", setup.keypoints_data, "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert only_json(result.stdout)["runner"] == "sandbox"


# --- classification, with the demo models (tests/conftest.py) ----------------------------------


@pytest.fixture(scope="module")
def classification_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cls-data")
    eval_data.get_kind("classification").synth(root, CLASSIFICATION_COUNT, 7)
    write_manifest(root, "classification")
    return root


def _program_metrics(path: Path, data: Path) -> dict[str, Any]:
    """The exported program run in this process and scored the way the grader's parent does."""
    kind = get_kind("classification")
    dataset = eval_data.load(data, "classification")
    with torch.no_grad():
        raw = torch.export.load(str(path)).module()(torch.from_numpy(dataset.inputs)).numpy()
    compact, _, _ = kind.check_batch(raw, len(dataset), kind.params_for(dataset))
    return {**kind.compute_metrics(compact, dataset), "dataset_hash": dataset.dataset_hash}


@pytest.mark.sandbox
def test_it_grades_the_classification_demo_model_in_the_sandbox(
    demo_models: dict[str, Path], classification_data: Path
) -> None:
    model = demo_models["classification_pass"]
    result = run_grader(
        "evaluate", model, "--challenge", "classification",
        "--data", classification_data, "--json", "--batch-size", "7",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    data = only_json(result.stdout)
    assert data.keys() >= CLASSIFICATION_KEYS
    expected = _program_metrics(model, classification_data)
    assert data["runner"] == "sandbox"
    assert data["task"] == "classification"
    assert data["format"] == "pt2"
    assert data["count"] == CLASSIFICATION_COUNT
    assert data["dataset_hash"] == expected["dataset_hash"]
    assert abs(data["accuracy"] - expected["accuracy"]) < 1e-12
    assert data["per_class_accuracy"] == expected["per_class_accuracy"]
    assert list(data["per_class_accuracy"]) == list(CLASS_NAMES)
    assert data["confusion"] == expected["confusion"]
    assert sum(map(sum, data["confusion"])) == CLASSIFICATION_COUNT
    assert data["accuracy"] >= 0.8
    assert data["passed"] is True
    assert data["threshold"] == 0.5
    assert data["grader_version"]


def test_it_reports_the_failing_classification_demo_model_as_not_passed(
    demo_models: dict[str, Path], classification_data: Path
) -> None:
    model = demo_models["classification_fail"]
    result = run_grader(
        "evaluate", model, "--challenge", "classification",
        "--data", classification_data, "--json", "--no-sandbox",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    data = only_json(result.stdout)
    assert data.keys() >= CLASSIFICATION_KEYS
    assert data["runner"] == "process"
    assert data["passed"] is False
    # Always class 0 ("checkerboard") on 6 images of each of the 10 classes.
    assert data["accuracy"] == pytest.approx(0.1)
    assert data["per_class_accuracy"] == {
        n: (1.0 if n == CLASS_NAMES[0] else 0.0) for n in CLASS_NAMES
    }
    assert data["confusion"] == [[6] + [0] * 9 for _ in CLASS_NAMES]


def test_it_shows_classification_figures_to_a_person(
    demo_models: dict[str, Path], classification_data: Path
) -> None:
    result = run_grader(
        "check", demo_models["classification_pass"], "--challenge", "classification",
        "--data", classification_data, "--no-sandbox",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert re.search(rf"^count:\s+{CLASSIFICATION_COUNT}$", result.stdout, re.MULTILINE)
    assert re.search(r"^accuracy:\s+(0\.\d+|1)$", result.stdout, re.MULTILINE)
    assert re.search(r"^PASSED: accuracy \S+, threshold 0\.5 \(", result.stdout, re.MULTILINE)
    # Per-class figures and the confusion matrix are --json's, not the summary's.
    assert "per class" not in result.stdout and "confusion" not in result.stdout


def test_it_rejects_a_classifier_with_the_wrong_number_of_classes(
    classification_data: Path, tmp_path: Path
) -> None:
    model = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 9)).eval()
    path = _export(model, torch.rand(2, 3, 32, 32), tmp_path / "nine.pt2")
    result = run_grader(
        "evaluate", path, "--challenge", "classification",
        "--data", classification_data, "--json", "--no-sandbox",
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    data = only_json(result.stdout)
    assert data["code"] == "output_shape"
    # The student's message is worded by the parent: the shape needed, not the one returned.
    assert data["error"].startswith("your model's output does not have the shape")
    assert "class scores of shape (N, 10)" in data["error"]


COURSE_CLASSIFIER = """
from torch import nn


class ClassificationNet(nn.Module):
    def __init__(self, hparams=None):
        super().__init__()
        self.hparams = hparams
        self.net = nn.Sequential(
            nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, hparams["n"])
        )

    def forward(self, x):
        return self.net(x)
"""


@pytest.mark.sandbox
def test_it_rebuilds_the_course_classification_net_from_a_state_dict(tmp_path: Path) -> None:
    namespace: dict[str, Any] = {}
    exec(COURSE_CLASSIFIER, namespace)  # the test's own code: the student's class, to save
    hparams = {"n": 10, "learning_rate": 1e-3}
    model = namespace["ClassificationNet"](hparams=hparams)
    buffer = io.BytesIO()
    torch.save({"state_dict": model.state_dict(), "hparams": hparams}, buffer)
    path = tmp_path / "submission.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("exercise_code/__init__.py", "")
        archive.writestr("exercise_code/networks/__init__.py", "")
        archive.writestr("exercise_code/networks/classification_net.py", COURSE_CLASSIFIER)
        archive.writestr("models/classification_pytorch.p", buffer.getvalue())
    result = run_grader("check", path, "--challenge", "classification", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    assert only_json(result.stdout) == {
        "task": "classification",
        "format": "course_zip",
        "params": sum(p.numel() for p in model.parameters()),
        "output_shape": "ok",
        "score": None,
    }
