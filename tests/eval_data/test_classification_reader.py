"""The image-folder reader: torchvision's ImageFolder order and decoding, errors, manifests, synth.

Expected pixels come from the arrays the test wrote (a grey value repeated, a palette looked up,
alpha dropped), not from decoding the files the way the reader does; torchvision's own
``ImageFolder`` + ``ToTensor`` is a second oracle for order, labels and pixels.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import datasets, transforms

from eval_data import DatasetError, get_kind, load
from eval_data.kinds.classification import (
    CLASS_NAMES,
    SIZE,
    read_image_folder,
    render_pictures,
)
from eval_data.manifest import MANIFEST, verify_manifest, write_manifest
from eval_data.public import read_public_samples, synth_public

REPO = Path(__file__).resolve().parents[2]
KIND = get_kind("classification")
H, W = 6, 8  # not square, so a transposed image cannot pass


def _rgb(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (H, W, 3), dtype=np.uint8)


def _save(root: Path, name: str, seed: int, mode: str) -> np.ndarray:
    """Write ``root/name`` in ``mode`` (format from the extension); return the RGB it must read as.

    Every format here is lossless, so the expected pixels are exact.
    """
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    fmt = {".pgm": "PPM", ".tif": "TIFF", ".tiff": "TIFF", ".webp": "WEBP"}.get(
        path.suffix.lower(), path.suffix.lower().lstrip(".").upper()
    )
    options: dict[str, Any] = {"lossless": True} if fmt == "WEBP" else {}
    if mode == "RGB":
        pixels = _rgb(seed)
        Image.fromarray(pixels, "RGB").save(path, fmt, **options)
        return pixels
    if mode == "L":
        grey = rng.integers(0, 256, (H, W), dtype=np.uint8)
        Image.fromarray(grey, "L").save(path, fmt)
        return np.repeat(grey[..., None], 3, axis=2)
    if mode == "RGBA":
        rgba = rng.integers(0, 256, (H, W, 4), dtype=np.uint8)
        rgba[0, 0, 3] = 0  # fully transparent: convert("RGB") keeps its colour all the same
        Image.fromarray(rgba, "RGBA").save(path, fmt)
        return rgba[..., :3]
    if mode == "P":
        palette = rng.integers(0, 256, (256, 3), dtype=np.uint8)
        index = rng.integers(0, 256, (H, W), dtype=np.uint8)
        image = Image.fromarray(index, "P")
        image.putpalette(palette.reshape(-1).tolist())
        image.save(path, fmt)
        return palette[index]
    if mode == "1":
        bits = rng.random((H, W)) < 0.5
        Image.fromarray(bits).save(path, fmt)  # a bool array is mode "1"
        return np.repeat(np.where(bits, 255, 0).astype(np.uint8)[..., None], 3, axis=2)
    raise ValueError(mode)


def _hand_set(root: Path) -> dict[str, np.ndarray]:
    """Five classes, one empty, every image mode, nesting, and files the reader must skip.

    Returns the expected RGB of each image, by id, in the order torchvision reads them:
    class folders sorted by code point ("Eel" before "bird"), then ``sorted(os.walk(...))``
    (``bird/sub-x`` before ``bird/sub/deeper``: "-" sorts before "/"), then sorted file names.
    """
    expected = {
        "Eel/X.TIFF": _save(root, "Eel/X.TIFF", 1, "RGBA"),
        "bird/a.png": _save(root, "bird/a.png", 2, "RGB"),
        "bird/z.PNG": _save(root, "bird/z.PNG", 3, "L"),
        "bird/sub/b.bmp": _save(root, "bird/sub/b.bmp", 4, "RGB"),
        "bird/sub-x/d.tif": _save(root, "bird/sub-x/d.tif", 5, "P"),
        "bird/sub/deeper/e.PpM": _save(root, "bird/sub/deeper/e.PpM", 6, "RGB"),
        "cat/B.webp": _save(root, "cat/B.webp", 7, "RGB"),
        "cat/p.png": _save(root, "cat/p.png", 8, "P"),
        "cat/q.png": _save(root, "cat/q.png", 9, "RGBA"),
        "cat/r.pgm": _save(root, "cat/r.pgm", 10, "L"),
        "dog/bits.bmp": _save(root, "dog/bits.bmp", 11, "1"),
    }
    (root / "cow").mkdir()  # a class with no image: index 3 all the same
    (root / "cow" / "notes.txt").write_text("no pictures yet\n")
    (root / "bird" / "readme.txt").write_text("ignored\n")
    (root / "cat" / "t.png.bak").write_bytes(b"not an image")
    (root / "cat" / "labels.csv").write_text("a,b\n")
    (root / "top-level.png").write_bytes(b"a file beside the class folders is no class")
    return expected


def _hidden(root: Path) -> None:
    """Entries a folder picks up in practice; the reader skips every name starting with "."."""
    _save(root, ".ipynb_checkpoints/bird/a.png", 20, "RGB")
    _save(root, "bird/.hidden.png", 21, "RGB")
    _save(root, "bird/.cache/c.png", 22, "RGB")
    (root / "cat" / "._p.png").write_bytes(b"\0\5\26\7macOS resource fork")


CLASSES = ["Eel", "bird", "cat", "cow", "dog"]


def _label(image_id: str) -> int:
    return CLASSES.index(image_id.split("/")[0])


def test_it_reads_every_mode_in_torchvisions_order_with_an_empty_class_kept(
    tmp_path: Path,
) -> None:
    expected = _hand_set(tmp_path)
    _hidden(tmp_path)

    inputs, labels, ids, classes, report = read_image_folder(tmp_path)

    assert classes == CLASSES
    assert ids == list(expected)
    assert labels.dtype == np.int64
    assert labels.tolist() == [_label(i) for i in ids] == [0, 1, 1, 1, 1, 1, 2, 2, 2, 2, 4]
    assert inputs.dtype == np.float32 and inputs.shape == (len(expected), 3, H, W)
    for row, pixels in zip(inputs, expected.values(), strict=True):
        # float32(v) / 255 rounds once; v / 255 in float64 then float32 rounds to the same value.
        want = (pixels.transpose(2, 0, 1).astype(np.float64) / 255).astype(np.float32)
        np.testing.assert_array_equal(row, want)
    assert report == {
        "classes": 5,
        "empty_classes": ["cow"],
        "ignored_files": 4,  # notes.txt, readme.txt, t.png.bak, labels.csv
        "image_size": f"{W}x{H}",
    }
    assert KIND.data_files(tmp_path) == [f"{c}/" for c in CLASSES] + list(expected)


def test_it_agrees_with_torchvision_image_folder_and_to_tensor(tmp_path: Path) -> None:
    _hand_set(tmp_path)
    folder = datasets.ImageFolder(str(tmp_path), transform=transforms.ToTensor(), allow_empty=True)

    dataset = KIND.read(tmp_path, "hash")

    assert dataset.classes == folder.classes
    assert dataset.ids == [Path(p).relative_to(tmp_path).as_posix() for p, _ in folder.samples]
    assert dataset.labels.tolist() == folder.targets
    for i, (tensor, target) in enumerate(folder):
        assert torch.equal(torch.from_numpy(dataset.inputs[i]), tensor)
        assert dataset.labels[i] == target
    assert dataset.task == "classification" and dataset.dataset_hash == "hash"


def test_it_follows_a_linked_class_folder_but_refuses_a_link_loop(tmp_path: Path) -> None:
    root = tmp_path / "data"
    _save(tmp_path, "elsewhere/a.png", 1, "RGB")
    _save(root, "bird/b.png", 2, "RGB")
    (root / "ant").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    dataset = KIND.read(root, "")
    assert dataset.classes == ["ant", "bird"] and dataset.ids == ["ant/a.png", "bird/b.png"]

    (root / "bird" / "again").symlink_to(root / "bird", target_is_directory=True)
    with pytest.raises(DatasetError, match="links to a folder it is inside") as info:
        KIND.read(root, "")
    assert str(root / "bird" / "again") in str(info.value)


# --- errors ------------------------------------------------------------------------------------


def test_it_refuses_mixed_sizes_naming_the_first_odd_file_and_both_sizes(tmp_path: Path) -> None:
    _save(tmp_path, "a/1.png", 1, "RGB")
    _save(tmp_path, "a/2.png", 2, "RGB")
    (tmp_path / "b").mkdir()
    # The same pixel count turned on its side, then a third size further on.
    Image.fromarray(np.zeros((W, H, 3), np.uint8)).save(tmp_path / "b" / "3.png")
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(tmp_path / "b" / "4.png")
    with pytest.raises(DatasetError) as info:
        KIND.read(tmp_path, "")
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 'b' / '3.png'} is {H}x{W} pixels")
    assert f"but {tmp_path / 'a' / '1.png'} is {W}x{H}" in message
    assert "4.png" not in message
    assert "same size" in message


@pytest.mark.parametrize("content", ["nothing", "files only", "hidden folder only"])
def test_it_refuses_a_folder_without_class_folders(tmp_path: Path, content: str) -> None:
    if content == "files only":
        _save(tmp_path, "a.png", 1, "RGB")
    if content == "hidden folder only":
        _save(tmp_path, ".ipynb_checkpoints/a.png", 1, "RGB")
    with pytest.raises(DatasetError, match="has no class folders") as info:
        KIND.data_files(tmp_path)
    assert str(tmp_path) in str(info.value)
    assert "<class name>/<image>" in str(info.value)


def test_it_refuses_class_folders_without_any_image(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "photo.gif").write_bytes(b"GIF89a")  # not one of torchvision's extensions
    with pytest.raises(DatasetError, match=r"none of the 2 class folders in .* holds an image"):
        KIND.read(tmp_path, "")


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_it_names_an_unreadable_image(tmp_path: Path, damage: str) -> None:
    _save(tmp_path, "a/1.png", 1, "RGB")
    good = (tmp_path / "a" / "1.png").read_bytes()
    bad = tmp_path / "b" / "2.png"
    bad.parent.mkdir()
    bad.write_bytes(
        {"garbage": b"this is not a png", "truncated": good[: len(good) // 2], "empty": b""}[damage]
    )
    with pytest.raises(DatasetError) as info:
        KIND.read(tmp_path, "")
    assert str(info.value).startswith(f"{bad} is not a readable image")
    assert "replace or remove it" in str(info.value)


@pytest.mark.parametrize("where", ["class folder", "image"])
def test_it_refuses_names_the_manifest_cannot_hash(tmp_path: Path, where: str) -> None:
    _save(tmp_path, "a/1.png", 1, "RGB")
    good = (tmp_path / "a" / "1.png").read_bytes()
    # Latin-1 bytes from another system: not UTF-8, so not a name the manifest can write.
    if where == "class folder":
        os.mkdir(os.fsencode(tmp_path) + b"/caf\xe9")
    else:
        Path(os.fsdecode(os.fsencode(tmp_path) + b"/a/caf\xe9.png")).write_bytes(good)
    with pytest.raises(DatasetError, match="not valid UTF-8; rename it"):
        KIND.data_files(tmp_path)


def test_it_names_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        KIND.read(tmp_path / "nope", "")


# --- manifests ---------------------------------------------------------------------------------


def test_manifest_round_trip_covers_class_folders_and_images(tmp_path: Path) -> None:
    expected = _hand_set(tmp_path)
    _hidden(tmp_path)
    manifest = write_manifest(tmp_path, "classification")
    assert set(manifest["files"]) == {f"{c}/" for c in CLASSES} | set(expected)
    assert manifest["counts"] == {"files": len(CLASSES) + len(expected), "samples": len(expected)}
    assert manifest["report"]["empty_classes"] == ["cow"]
    assert json.loads((tmp_path / MANIFEST).read_text()) == manifest

    dataset = load(tmp_path, "classification")
    assert dataset.dataset_hash == manifest["dataset_hash"]
    assert dataset.classes == CLASSES and dataset.ids == list(expected)

    # Hidden entries and non-image files are no part of the dataset: nothing changes.
    _save(tmp_path, ".more/x.png", 30, "RGB")
    (tmp_path / "bird" / "todo.md").write_text("later\n")
    assert verify_manifest(tmp_path, "classification")["dataset_hash"] == manifest["dataset_hash"]
    assert write_manifest(tmp_path, "classification")["dataset_hash"] == manifest["dataset_hash"]


def test_adding_or_removing_an_empty_class_folder_fails_verification_and_changes_the_hash(
    tmp_path: Path,
) -> None:
    _hand_set(tmp_path)
    original = write_manifest(tmp_path, "classification")["dataset_hash"]

    (tmp_path / "ant").mkdir()  # sorts between "Eel" and "bird": shifts bird, cat, ...
    with pytest.raises(DatasetError) as info:
        load(tmp_path, "classification")
    assert str(tmp_path / "ant") in str(info.value) and "not listed in" in str(info.value)
    assert f"python -m eval_data manifest {tmp_path} --task classification" in str(info.value)
    added = write_manifest(tmp_path, "classification")["dataset_hash"]
    assert added != original
    assert load(tmp_path, "classification").classes == ["Eel", "ant", "bird", "cat", "cow", "dog"]

    (tmp_path / "ant").rmdir()
    assert write_manifest(tmp_path, "classification")["dataset_hash"] == original
    (tmp_path / "cow" / "notes.txt").unlink()
    (tmp_path / "cow").rmdir()  # the empty class goes: dog moves from index 4 to 3
    with pytest.raises(DatasetError, match="missing") as info:
        verify_manifest(tmp_path, "classification")
    assert str(tmp_path / "cow") in str(info.value)
    removed = write_manifest(tmp_path, "classification")["dataset_hash"]
    assert len({original, added, removed}) == 3


def test_an_image_added_after_the_manifest_fails_verification(tmp_path: Path) -> None:
    _hand_set(tmp_path)
    write_manifest(tmp_path, "classification")
    _save(tmp_path, "cow/new.png", 40, "RGB")
    with pytest.raises(DatasetError, match="not listed in") as info:
        load(tmp_path, "classification")
    assert str(tmp_path / "cow" / "new.png") in str(info.value)


# --- the synthetic set -------------------------------------------------------------------------


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_synth_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        KIND.synth(tmp_path / name, 30, seed)
    a, b, c = (_files(tmp_path / name) for name in "abc")
    assert a == b
    assert a.keys() == c.keys()
    assert all(a[name] != c[name] for name in a)
    hashes = [write_manifest(tmp_path / name, "classification")["dataset_hash"] for name in "abc"]
    assert hashes[0] == hashes[1] != hashes[2]
    assert KIND.data_files(tmp_path / "a") == [f"{n}/" for n in CLASS_NAMES] + sorted(a)


def test_synth_spreads_the_count_over_ten_described_classes(tmp_path: Path) -> None:
    assert list(CLASS_NAMES) == sorted(CLASS_NAMES) and len(CLASS_NAMES) == 10
    KIND.synth(tmp_path / "many", 23, 1)
    dataset = KIND.read(tmp_path / "many", "")
    assert dataset.classes == list(CLASS_NAMES)
    assert np.bincount(dataset.labels).tolist() == [3, 3, 3] + [2] * 7
    assert dataset.inputs.shape == (23, 3, SIZE, SIZE)
    for image_id in dataset.ids:
        with Image.open(tmp_path / "many" / image_id) as image:
            assert (image.format, image.mode, image.size) == ("PNG", "RGB", (SIZE, SIZE))
    # What was written is what was drawn, class by class.
    images, labels = render_pictures(23, 1)
    order = np.argsort(labels, kind="stable")
    want = images[order].transpose(0, 3, 1, 2).astype(np.float32) / np.float32(255)
    np.testing.assert_array_equal(dataset.inputs, want)

    KIND.synth(tmp_path / "few", 4, 1)  # fewer images than classes: every folder still exists
    few = KIND.read(tmp_path / "few", "")
    assert few.classes == list(CLASS_NAMES) and few.labels.tolist() == [0, 1, 2, 3]
    assert few.report["empty_classes"] == list(CLASS_NAMES[4:])


def test_synthetic_classes_are_balanced_and_colour_alone_does_not_tell_them_apart() -> None:
    images, labels = render_pictures(400, 5)
    assert images.dtype == np.uint8 and images.shape == (400, SIZE, SIZE, 3)
    assert np.bincount(labels).tolist() == [40] * 10
    # Nearest class mean colour: no better than a few points above chance.
    colour = images.reshape(400, -1, 3).mean(axis=1)
    means = np.stack([colour[labels == c].mean(axis=0) for c in range(10)])
    guess = np.linalg.norm(colour[:, None] - means[None], axis=2).argmin(axis=1)
    assert (guess == labels).mean() < 0.25


def test_synth_refuses_an_empty_set(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="at least one image"):
        KIND.synth(tmp_path, 0, 1)


def test_public_samples_are_read_by_the_same_reader(tmp_path: Path) -> None:
    folder = synth_public(tmp_path / "hidden", "classification", seed=3, count=6)
    samples = read_public_samples(folder, "classification", 4)
    assert samples.shape == (4, 3, SIZE, SIZE) and samples.dtype == np.float32
    np.testing.assert_array_equal(samples, KIND.read(folder, "").inputs[:4])


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


def test_cli_synth_verify_manifest(tmp_path: Path) -> None:
    root = tmp_path / "data"
    done = _cli("synth", "classification", str(root), "--count", "20", "--seed", "2")
    assert done.returncode == 0, done.stderr
    manifest = json.loads((root / MANIFEST).read_text())
    assert manifest["dataset_hash"] in done.stdout
    assert manifest["counts"] == {"files": 30, "samples": 20}
    assert len(load(root, "classification")) == 20

    done = _cli("verify", str(root), "--task", "classification")
    assert done.returncode == 0, done.stderr

    (root / "zebra").mkdir()
    done = _cli("verify", str(root), "--task", "classification")
    assert done.returncode == 1
    assert str(root / "zebra") in done.stderr and "Traceback" not in done.stderr
    (root / "zebra").rmdir()

    broken = root / "ring" / "00000.png"
    broken.write_bytes(b"\x89PNG broken")
    done = _cli("manifest", str(root), "--task", "classification")
    assert done.returncode == 1
    assert done.stderr.startswith(f"error: {broken} is not a readable image")
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    broken.unlink()

    done = _cli("manifest", str(root), "--task", "classification")
    assert done.returncode == 0, done.stderr
    assert "empty_classes []" in done.stdout
    assert _cli("verify", str(root), "--task", "classification").returncode == 0
