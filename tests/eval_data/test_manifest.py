"""Manifests: written, verified, and every way a test set can drift from its manifest."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from eval_data import DatasetError, load
from eval_data.kinds import get_kind
from eval_data.manifest import MANIFEST, verify_manifest, write_manifest


@pytest.fixture(params=["keypoints", "segmentation"])
def dataset(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, str]:
    task: str = request.param
    get_kind(task).synth(tmp_path, 3, seed=5)
    write_manifest(tmp_path, task)
    return tmp_path, task


def _hint(root: Path, task: str) -> str:
    return re.escape(f"python -m eval_data manifest {root} --task {task}")


def test_write_then_verify_and_load(dataset: tuple[Path, str]) -> None:
    root, task = dataset
    manifest = json.loads((root / MANIFEST).read_text())
    assert manifest["task"] == task
    assert manifest["counts"]["samples"] == 3
    files = 1 if task == "keypoints" else 7  # test.txt, 3 images, 3 targets
    assert manifest["counts"]["files"] == len(manifest["files"]) == files
    assert verify_manifest(root, task)["dataset_hash"] == manifest["dataset_hash"]
    loaded = load(root, task)
    assert len(loaded) == 3 and loaded.dataset_hash == manifest["dataset_hash"]


def test_changed_file_is_named(dataset: tuple[Path, str]) -> None:
    root, task = dataset
    name = "test.csv" if task == "keypoints" else "targets/synth_00001_GT.bmp"
    with (root / name).open("ab") as fh:
        fh.write(b"\0")
    with pytest.raises(DatasetError, match=re.escape(str(root / name))) as info:
        load(root, task)
    assert re.search(_hint(root, task), str(info.value))
    assert "does not match its sha256" in str(info.value)


def test_missing_file_is_named(dataset: tuple[Path, str]) -> None:
    root, task = dataset
    name = "test.csv" if task == "keypoints" else "images/synth_00002.bmp"
    (root / name).unlink()
    with pytest.raises(DatasetError, match=re.escape(str(root / name))) as info:
        verify_manifest(root, task)
    assert "missing" in str(info.value)
    assert re.search(_hint(root, task), str(info.value))


def test_missing_manifest_names_the_fix(dataset: tuple[Path, str]) -> None:
    root, task = dataset
    (root / MANIFEST).unlink()
    with pytest.raises(DatasetError, match=re.escape(str(root))) as info:
        load(root, task)
    assert MANIFEST in str(info.value)
    assert re.search(_hint(root, task), str(info.value))


def test_manifest_of_another_task(dataset: tuple[Path, str]) -> None:
    root, task = dataset
    other = "segmentation" if task == "keypoints" else "keypoints"
    with pytest.raises(DatasetError, match=f"describes a '{task}' dataset"):
        verify_manifest(root, other)


def test_rewriting_the_manifest_accepts_a_replaced_dataset(dataset: tuple[Path, str]) -> None:
    root, task = dataset
    before = verify_manifest(root, task)["dataset_hash"]
    get_kind(task).synth(root, 3, seed=6)
    with pytest.raises(DatasetError):
        verify_manifest(root, task)
    after = write_manifest(root, task)["dataset_hash"]
    assert after != before
    assert load(root, task).dataset_hash == after
