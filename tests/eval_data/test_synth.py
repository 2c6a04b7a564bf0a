"""Synthetic test sets: deterministic per seed, in the course's format, and the CLI around them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from eval_data import get_kind, load
from eval_data.kinds.keypoints import render_faces
from eval_data.kinds.segmentation import prepare, render_scenes
from grader.kinds.keypoints import keypoint_metrics
from grader.kinds.segmentation import segmentation_metrics

REPO = Path(__file__).resolve().parents[2]
COUNTS = {"keypoints": 6, "segmentation": 4}


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("task", ["keypoints", "segmentation"])
def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path, task: str) -> None:
    kind = get_kind(task)
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        kind.synth(tmp_path / name, COUNTS[task], seed)
    a, b, c = (_files(tmp_path / name) for name in "abc")
    assert a == b
    assert a.keys() == c.keys()
    assert a != c
    assert sorted(a) == sorted(kind.data_files(tmp_path / "a"))


def test_keypoints_lie_in_the_image_and_a_mean_guess_scores_low() -> None:
    images, points = render_faces(200, seed=11)
    assert images.dtype == np.uint8 and images.shape == (200, 96, 96)
    assert points.min() >= 0 and points.max() <= 96
    labels = (points - 48) / 48
    mean_guess = np.broadcast_to(labels.mean(axis=0), labels.shape)
    assert keypoint_metrics(mean_guess, labels)["score"] < 60
    # The faces are drawn: the eyes are darker than the skin between them.
    row = np.rint(points[:, 1]).astype(int)
    eye_x, mid_x = np.rint(points[:, 0]).astype(int), np.rint(points[:, 20]).astype(int)
    assert (images[np.arange(200), row, eye_x] < images[np.arange(200), row, mid_x]).mean() > 0.9


def test_scenes_mix_orientations_and_one_class_scores_low() -> None:
    images, targets = render_scenes(24, seed=3)
    assert {image.shape for image in images} == {(213, 320, 3), (320, 213, 3)}
    assert all(
        t.shape == i.shape and t.dtype == np.uint8 for i, t in zip(images, targets, strict=True)
    )
    _, labels, report = prepare(images, targets)
    assert report["unknown_colour_pixels"] == 0 and report["void_only_images"] == 0
    assert set(np.unique(labels)) <= {-1, 0, 1, 2, 3, 6, 9, 18}
    # Void borders between regions, like MSRC's hand labelling.
    assert 0.03 < (labels == -1).mean() < 0.4
    best = max(
        segmentation_metrics(np.full(labels.shape, c, np.uint8), labels)["accuracy"]
        for c in range(23)
    )
    assert best < 0.5


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "eval_data", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("task", ["keypoints", "segmentation"])
def test_cli_synth_verify_manifest(tmp_path: Path, task: str) -> None:
    root = tmp_path / "data"
    done = _cli("synth", task, str(root), "--count", str(COUNTS[task]), "--seed", "2")
    assert done.returncode == 0, done.stderr
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["dataset_hash"] in done.stdout
    assert len(done.stdout.strip().splitlines()) == 1
    assert len(load(root, task)) == COUNTS[task]

    done = _cli("verify", str(root), "--task", task)
    assert done.returncode == 0, done.stderr
    assert manifest["dataset_hash"] in done.stdout

    # A change that keeps the file readable: one more blank line, one pixel's blue value.
    first = sorted(root.rglob("*.bmp" if task == "segmentation" else "*.csv"))[0]
    data = first.read_bytes()
    first.write_bytes(data + b"\n" if task == "keypoints" else data[:-1] + bytes([data[-1] ^ 1]))
    done = _cli("verify", str(root), "--task", task)
    assert done.returncode == 1
    assert str(first) in done.stderr
    assert f"python -m eval_data manifest {root} --task {task}" in done.stderr
    assert "Traceback" not in done.stderr

    done = _cli("manifest", str(root), "--task", task)
    assert done.returncode == 0, done.stderr
    assert _cli("verify", str(root), "--task", task).returncode == 0


def test_cli_errors_are_one_line_without_traceback(tmp_path: Path) -> None:
    done = _cli("verify", str(tmp_path), "--task", "keypoints")
    assert done.returncode == 1
    assert done.stderr.startswith("error: ") and "manifest.json" in done.stderr
    assert "Traceback" not in done.stderr

    (tmp_path / "test.csv").write_text("left_eye_center_x,Image\n1,2\n")
    done = _cli("manifest", str(tmp_path), "--task", "keypoints")
    assert done.returncode == 1
    assert str(tmp_path / "test.csv") in done.stderr and "Traceback" not in done.stderr

    done = _cli("synth", "no-such-task", str(tmp_path))
    assert done.returncode != 0 and "keypoints" in done.stderr
