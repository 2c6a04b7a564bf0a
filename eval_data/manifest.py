"""Dataset manifests: which files make up a test set, their sha256, and one hash for the whole.

``manifest.json`` sits at the top of the dataset folder::

    {"format": 1, "task": "keypoints", "files": {"test.csv": "<sha256>"},
     "counts": {"files": 1, "samples": 298}, "dataset_hash": "<sha256>"}

The dataset hash is the sha256 of the sorted ``path\\0sha256\\n`` lines, so it names the exact
bytes the grader scored against and is recorded with every grading run. A path ending in ``/``
is a folder that must exist (an empty class folder of an image-folder set still has a class
index); its entry is the sha256 of nothing, so adding or removing one changes the hash.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from eval_data.dataset import Dataset, DatasetError
from eval_data.kinds import get_kind

MANIFEST = "manifest.json"
FORMAT = 1


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    if path.is_dir():
        return digest.hexdigest()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _dataset_hash(files: dict[str, str]) -> str:
    lines = "".join(f"{name}\0{files[name]}\n" for name in sorted(files))
    return hashlib.sha256(lines.encode()).hexdigest()


def _fix_hint(root: Path, task: str) -> str:
    return f"python -m eval_data manifest {root} --task {task}"


def write_manifest(root: Path, task: str) -> dict[str, Any]:
    """Hash every file of the dataset under ``root`` and write ``manifest.json``."""
    root = Path(root)
    kind = get_kind(task)
    files = {name: sha256_file(root / name) for name in kind.data_files(root)}
    dataset = kind.read(root, _dataset_hash(files))
    manifest = {
        "format": FORMAT,
        "task": task,
        "files": files,
        "counts": {"files": len(files), "samples": len(dataset)},
        "report": dataset.report,
        "dataset_hash": _dataset_hash(files),
    }
    (root / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def verify_manifest(root: Path, task: str) -> dict[str, Any]:
    """Check ``root`` against its manifest; raise ``DatasetError`` naming the first problem."""
    root = Path(root)
    path = root / MANIFEST
    if not path.is_file():
        raise DatasetError(f"{root} has no {MANIFEST}; write one with: {_fix_hint(root, task)}")
    try:
        manifest = json.loads(path.read_text())
        files: dict[str, str] = manifest["files"]
        recorded_task = manifest["task"]
    except (ValueError, KeyError, TypeError) as exc:
        raise DatasetError(
            f"{path} is not a valid manifest ({exc}); rewrite it with: {_fix_hint(root, task)}"
        ) from exc
    if recorded_task != task:
        raise DatasetError(f"{path} describes a {recorded_task!r} dataset, not {task!r}")
    for name, expected in sorted(files.items()):
        file = root / name
        if not (file.is_dir() if name.endswith("/") else file.is_file()):
            raise DatasetError(
                f"{file} is listed in {MANIFEST} but missing; restore it, or if the dataset"
                f" was replaced on purpose run: {_fix_hint(root, task)}"
            )
        if sha256_file(file) != expected:
            raise DatasetError(
                f"{file} does not match its sha256 in {MANIFEST}; restore it, or if the"
                f" dataset was replaced on purpose run: {_fix_hint(root, task)}"
            )
    # Where the layout decides what is read (an image folder), a file or class folder added
    # since would be read and scored without being hashed, or shift every class index.
    extra = sorted(set(get_kind(task).data_files(root)) - set(files))
    if extra:
        raise DatasetError(
            f"{root / extra[0]} is part of the dataset but not listed in {MANIFEST}; remove it,"
            f" or if the dataset was changed on purpose run: {_fix_hint(root, task)}"
        )
    if manifest.get("dataset_hash") != _dataset_hash(files):
        raise DatasetError(f"{path} has a dataset_hash that does not match its file list")
    return dict(manifest)


def load(root: Path, task: str) -> Dataset:
    """Verify the manifest, then read the dataset with its task's reader."""
    root = Path(root)
    manifest = verify_manifest(root, task)
    return get_kind(task).read(root, manifest["dataset_hash"])
