"""The public / private split: chosen from the data alone, the same on every run, and the
parts' figures agree with an independent computation of each part (no Django)."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest

from eval_data.dataset import Dataset
from grader.evaluate import split_metrics
from grader.kinds import get_kind
from grader.kinds.segmentation import NUM_CLASSES
from grader.split import public_split

KEYPOINTS = get_kind("keypoints")
SEGMENTATION = get_kind("segmentation")
HASH = hashlib.sha256(b"a hidden test set").hexdigest()


def keypoint_set(n: int, seed: int = 0) -> tuple[Dataset, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.uniform(-1, 1, (n, 30)).astype(np.float32)
    predictions = (labels + rng.normal(0, 0.05, (n, 30))).astype(np.float32)
    ids = [f"img_{i:04d}" for i in range(n)]
    inputs = np.zeros((n, 1, 4, 4), dtype=np.float32)
    return Dataset("keypoints", inputs, labels, HASH, ids), predictions


def independent_parts(ids: list[str], dataset_hash: str, fraction: float) -> tuple[set, set]:
    """The split as the README states it, written out again."""
    keys = sorted(
        (hashlib.sha256(f"{dataset_hash[:16]}:{i}".encode()).hexdigest(), n)
        for n, i in enumerate(ids)
    )
    public_n = round(fraction * len(ids))
    return {n for _, n in keys[:public_n]}, {n for _, n in keys[public_n:]}


def test_it_splits_by_the_data_alone_and_the_same_every_time() -> None:
    dataset, _ = keypoint_set(101)
    first = public_split(dataset, 0.5)
    again = public_split(keypoint_set(101, seed=9)[0], 0.5)  # other labels, same ids and hash

    assert first.public.tolist() == again.public.tolist()
    assert len(first.public) == 50 and len(first.private) == 51
    assert set(first.public.tolist()) | set(first.private.tolist()) == set(range(101))
    public, private = independent_parts(dataset.ids, HASH, 0.5)
    assert set(first.public.tolist()) == public and set(first.private.tolist()) == private


def test_it_splits_other_data_differently() -> None:
    dataset, _ = keypoint_set(200)
    other = Dataset("keypoints", dataset.inputs, dataset.labels, "f" * 64, dataset.ids)

    assert public_split(dataset, 0.5).public.tolist() != public_split(other, 0.5).public.tolist()


def test_it_keeps_both_parts_non_empty() -> None:
    dataset, _ = keypoint_set(3)

    assert len(public_split(dataset, 0.01).public) == 1
    assert len(public_split(dataset, 0.99).private) == 1


def test_it_scores_keypoint_parts_and_the_whole_is_their_count_weighted_mean() -> None:
    dataset, predictions = keypoint_set(57)
    whole = KEYPOINTS.compute_metrics(predictions, dataset)

    metrics = split_metrics(KEYPOINTS, predictions, dataset, 0.3)

    public, private = independent_parts(dataset.ids, HASH, 0.3)
    for part, members in (("public", public), ("private", private)):
        rows = sorted(members)
        mse = float(np.mean((predictions[rows].astype(np.float64) - dataset.labels[rows]) ** 2))
        assert metrics[part]["mse"] == pytest.approx(mse, rel=1e-12)
        assert metrics[part]["score"] == pytest.approx(1 / (2 * mse), rel=1e-12)
    assert metrics["public_count"] == len(public) == 17
    assert metrics["public_count"] + metrics["private_count"] == whole["count"] == 57
    weighted = (
        metrics["public"]["mse"] * metrics["public_count"]
        + metrics["private"]["mse"] * metrics["private_count"]
    ) / whole["count"]
    assert whole["mse"] == pytest.approx(weighted, rel=1e-12)
    assert metrics["split_seed"] == HASH[:16]


def test_it_scores_segmentation_parts_per_image_and_skips_void_only_images() -> None:
    rng = np.random.default_rng(3)
    n, size = 24, 8
    targets = rng.integers(-1, NUM_CLASSES, (n, size, size)).astype(np.int64)
    targets[5] = -1  # void only: skipped in whichever part holds it
    predictions = np.where(rng.random((n, size, size)) < 0.6, targets, 0).astype(np.uint8)
    ids = [f"{i}_s" for i in range(n)]
    dataset = Dataset("segmentation", np.zeros((n, 3, 1, 1), np.float32), targets, HASH, ids)
    whole = SEGMENTATION.compute_metrics(predictions, dataset)

    metrics = split_metrics(SEGMENTATION, predictions, dataset, 0.5)

    public, private = independent_parts(ids, HASH, 0.5)
    for part, members in (("public", public), ("private", private)):
        accuracies = []
        for i in sorted(members):
            mask = targets[i] >= 0
            if mask.any():
                accuracies.append(float((predictions[i][mask] == targets[i][mask]).mean()))
        assert metrics[part]["accuracy"] == pytest.approx(sum(accuracies) / len(accuracies))
        assert metrics[f"{part}_count"] == len(accuracies)
    assert metrics["public_count"] + metrics["private_count"] == whole["count"] == n - 1
    weighted = (
        metrics["public"]["accuracy"] * metrics["public_count"]
        + metrics["private"]["accuracy"] * metrics["private_count"]
    ) / whole["count"]
    assert whole["accuracy"] == pytest.approx(weighted, rel=1e-12)
    assert not math.isnan(weighted)
