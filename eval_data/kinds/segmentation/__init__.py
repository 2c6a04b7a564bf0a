"""Semantic segmentation: MSRC-v2 as the course ships it, plus a generator of labelled scenes.

``test.txt`` lists ``<id>.bmp`` names; ``images/<id>.bmp`` is the photo and
``targets/<id>_GT.bmp`` its colour-coded labels. Both are centre-cropped to 240 x 240 the way
``torchvision.transforms.CenterCrop(240)`` does it, so scores match the course's own loader.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from eval_data.dataset import Dataset, DatasetError
from eval_data.kinds import DatasetKind, register

if TYPE_CHECKING:
    from eval_data.demo_models import DemoModels

CROP = 240
LIST_NAME = "test.txt"
#: MSRC-v2 label colours as (id, name, RGB); id -1 is void, the black of unlabelled pixels.
LABEL_COLOURS: list[tuple[int, str, tuple[int, int, int]]] = [
    (-1, "void", (0, 0, 0)),
    (0, "building", (128, 0, 0)),
    (1, "grass", (0, 128, 0)),
    (2, "tree", (128, 128, 0)),
    (3, "cow", (0, 0, 128)),
    (4, "horse", (128, 0, 128)),
    (5, "sheep", (0, 128, 128)),
    (6, "sky", (128, 128, 128)),
    (7, "mountain", (64, 0, 0)),
    (8, "airplane", (192, 0, 0)),
    (9, "water", (64, 128, 0)),
    (10, "face", (192, 128, 0)),
    (11, "car", (64, 0, 128)),
    (12, "bicycle", (192, 0, 128)),
    (13, "flower", (64, 128, 128)),
    (14, "sign", (192, 128, 128)),
    (15, "bird", (0, 64, 0)),
    (16, "book", (128, 64, 0)),
    (17, "chair", (0, 192, 0)),
    (18, "road", (128, 64, 128)),
    (19, "cat", (0, 192, 128)),
    (20, "dog", (128, 192, 128)),
    (21, "body", (64, 64, 0)),
    (22, "boat", (192, 64, 0)),
]
NUM_CLASSES = 23


def _pack(rgb: np.ndarray) -> np.ndarray:
    """One int32 per pixel, so a colour lookup is a single sorted search."""
    rgb = rgb.astype(np.int32)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


_KEYS = _pack(np.array([rgb for _, _, rgb in LABEL_COLOURS]))
_ORDER = np.argsort(_KEYS)
_SORTED_KEYS = _KEYS[_ORDER]
_SORTED_IDS = np.array([i for i, _, _ in LABEL_COLOURS], dtype=np.int64)[_ORDER]
_RGB_OF_ID = {i: rgb for i, _, rgb in LABEL_COLOURS}


def colours_to_labels(target_rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Class ids (int64, -1 = void) for an ``(H, W, 3)`` colour target, and the unknown mask."""
    packed = _pack(target_rgb)
    pos = np.minimum(np.searchsorted(_SORTED_KEYS, packed), len(_SORTED_KEYS) - 1)
    known = _SORTED_KEYS[pos] == packed
    return np.where(known, _SORTED_IDS[pos], -1), ~known


def labels_to_colours(labels: np.ndarray) -> np.ndarray:
    """The inverse of ``colours_to_labels`` for known ids: ``(H, W)`` ids to ``(H, W, 3)`` uint8."""
    table = np.zeros((NUM_CLASSES + 1, 3), dtype=np.uint8)
    for class_id, rgb in _RGB_OF_ID.items():
        table[class_id + 1] = rgb
    return table[np.asarray(labels, dtype=np.int64) + 1]


def center_crop(array: np.ndarray, size: int = CROP) -> np.ndarray:
    """``torchvision.transforms.CenterCrop(size)`` on an ``(H, W[, C])`` array.

    The short side is zero-padded (left/top get the smaller half), then the long side cropped
    at ``int(round((side - size) / 2))``; Python's ``round`` keeps torchvision's tie-breaking.
    """
    h, w = array.shape[:2]
    pad_h, pad_w = max(size - h, 0), max(size - w, 0)
    if pad_h or pad_w:
        pads = [(pad_h // 2, (pad_h + 1) // 2), (pad_w // 2, (pad_w + 1) // 2)]
        array = np.pad(array, pads + [(0, 0)] * (array.ndim - 2))
        h, w = array.shape[:2]
    top, left = round((h - size) / 2.0), round((w - size) / 2.0)
    return array[top : top + size, left : left + size]


def prepare(
    images: Sequence[np.ndarray], targets_rgb: Sequence[np.ndarray]
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Crop and convert uint8 images and colour targets the way the reader does."""
    if len(images) != len(targets_rgb):
        raise ValueError(f"{len(images)} images but {len(targets_rgb)} targets")
    return _prepare(len(images), zip(images, targets_rgb, strict=True))


def _prepare(
    count: int, pairs: Iterable[tuple[np.ndarray, np.ndarray]]
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    # Pairs arrive one at a time so the reader never holds every decoded bitmap at once.
    inputs = np.empty((count, 3, CROP, CROP), dtype=np.float32)
    labels = np.empty((count, CROP, CROP), dtype=np.int64)
    unknown_pixels = 0
    unknown: set[tuple[int, int, int]] = set()
    for i, (image, target) in enumerate(pairs):
        # float32 / 255 is what ToTensor computes for a uint8 image.
        inputs[i] = center_crop(image).transpose(2, 0, 1).astype(np.float32) / np.float32(255)
        cropped = center_crop(target)
        labels[i], mask = colours_to_labels(cropped)
        if mask.any():
            unknown_pixels += int(mask.sum())
            if len(unknown) < 10:
                unknown.update(
                    (int(r), int(g), int(b)) for r, g, b in np.unique(cropped[mask], axis=0)
                )
    report = {
        "unknown_colour_pixels": unknown_pixels,
        "unknown_colours": [list(rgb) for rgb in sorted(unknown)[:10]],
        "void_only_images": int((labels < 0).all(axis=(1, 2)).sum()),
    }
    return inputs, labels, report


def read_image_list(root: Path) -> list[str]:
    """Ids from ``test.txt``; names must be plain ``<id>.bmp`` files, listed once."""
    path = Path(root) / LIST_NAME
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise DatasetError(f"{path} is missing (a segmentation test set needs it)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path} cannot be read: {exc}") from None
    ids: list[str] = []
    for number, line in enumerate(lines, 1):
        name = line.strip()
        if not name:
            continue
        if not name.lower().endswith(".bmp") or "/" in name or "\\" in name or name[:1] == ".":
            raise DatasetError(
                f"{path}, line {number}: {name!r} is not an image name like 1_1_s.bmp"
            )
        ids.append(name[: -len(".bmp")])
    if not ids:
        raise DatasetError(f"{path} lists no images")
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise DatasetError(f"{path} lists images more than once: {', '.join(repeated[:5])}")
    return ids


def _files(ids: list[str]) -> tuple[list[str], list[str]]:
    return [f"images/{i}.bmp" for i in ids], [f"targets/{i}_GT.bmp" for i in ids]


def _load_rgb(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB"), dtype=np.uint8)
    except FileNotFoundError:
        raise DatasetError(f"{path} is missing") from None
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise DatasetError(f"{path} is not a readable image: {exc}") from None


def read_msrc(root: Path) -> tuple[np.ndarray, np.ndarray, list[str], dict[str, Any]]:
    """An MSRC-style folder as ``(inputs (N,3,240,240), labels (N,240,240), ids, report)``."""
    root = Path(root)
    ids = read_image_list(root)
    image_files, target_files = _files(ids)

    def pairs() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for image_file, target_file in zip(image_files, target_files, strict=True):
            image, target = _load_rgb(root / image_file), _load_rgb(root / target_file)
            if image.shape != target.shape:
                raise DatasetError(
                    f"{root / target_file} is {target.shape[1]}x{target.shape[0]} but its image"
                    f" is {image.shape[1]}x{image.shape[0]}"
                )
            yield image, target

    inputs, labels, report = _prepare(len(ids), pairs())
    return inputs, labels, ids, report


def write_msrc(
    root: Path,
    images_uint8: Sequence[np.ndarray],
    targets_rgb: Sequence[np.ndarray],
    ids: Sequence[str],
) -> None:
    """Write images and colour targets (each ``(H, W, 3)`` uint8) in the MSRC layout."""
    _write_pairs(Path(root), zip(images_uint8, targets_rgb, strict=True), ids)


def _write_pairs(
    root: Path, pairs: Iterable[tuple[np.ndarray, np.ndarray]], ids: Sequence[str]
) -> None:
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "targets").mkdir(parents=True, exist_ok=True)
    image_files, target_files = _files(list(ids))
    for (image, target), image_file, target_file in zip(
        pairs, image_files, target_files, strict=True
    ):
        Image.fromarray(np.asarray(image, dtype=np.uint8), "RGB").save(root / image_file, "BMP")
        Image.fromarray(np.asarray(target, dtype=np.uint8), "RGB").save(root / target_file, "BMP")
    (root / LIST_NAME).write_text("".join(f"{i}.bmp\n" for i in ids), encoding="utf-8")


# Synthetic scenes: a few MSRC classes, each with its own colour and texture, laid out as a
# sky band over ground bands with buildings, trees and cows. Colours overlap enough between
# classes (sky/water, grass/tree, building/road) that a model has to use texture and context.
BUILDING, GRASS, TREE, COW, SKY, WATER, ROAD = 0, 1, 2, 3, 6, 9, 18
_SHAPES = ((213, 320), (320, 213))


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cell: float) -> np.ndarray:
    """Unit-ish noise varying over ``cell`` pixels (bilinear interpolation of a coarse grid)."""
    grid = rng.standard_normal((int(h / cell) + 2, int(w / cell) + 2)).astype(np.float32)
    ys, xs = np.arange(h, dtype=np.float32) / cell, np.arange(w, dtype=np.float32) / cell
    y0, x0 = ys.astype(np.int64), xs.astype(np.int64)
    fy, fx = (ys - y0)[:, None], xs - x0
    rows = grid[y0] * (1 - fy) + grid[y0 + 1] * fy
    return np.asarray(rows[:, x0] * (1 - fx) + rows[:, x0 + 1] * fx, dtype=np.float32)


def _texture(rng: np.random.Generator, cls: int, h: int, w: int, yy: np.ndarray) -> np.ndarray:
    """An ``(h, w, 3)`` float canvas of one class's look, to be cut out by its mask."""

    def base(rgb: tuple[float, float, float], jitter: float) -> np.ndarray:
        return (np.array(rgb) + rng.uniform(-jitter, jitter, 3)).astype(np.float32)

    def grain(sigma: float) -> np.ndarray:
        return rng.standard_normal((h, w, 1), dtype=np.float32) * np.float32(sigma)

    if cls == SKY:
        top, low = base((95, 145, 220), 15), base((185, 210, 240), 10)
        t = np.clip(yy / (0.6 * h), 0, 1)[..., None]
        return top * (1 - t) + low * t + grain(2) + 6 * _smooth_noise(rng, h, w, 40)[..., None]
    if cls == GRASS:
        blades = grain(16) * np.array([0.8, 1.0, 0.6], dtype=np.float32)
        return base((75, 140, 50), 15) + blades + 12 * _smooth_noise(rng, h, w, 20)[..., None]
    if cls == TREE:
        leaves = 22 * _smooth_noise(rng, h, w, 4)[..., None]
        return base((40, 80, 35), 8) + leaves + grain(8)
    if cls == WATER:
        ripples = 18 * np.sin(yy * rng.uniform(0.6, 1.2) + 3 * _smooth_noise(rng, h, w, 30))
        return base((45, 90, 150), 12) + ripples[..., None] + grain(5)
    if cls == ROAD:
        return base((95, 92, 98), 15) + grain(9) + 5 * _smooth_noise(rng, h, w, 10)[..., None]
    if cls == COW:
        if rng.random() < 0.5:  # black and white patches
            patches = _smooth_noise(rng, h, w, 12)[..., None] > 0
            return np.where(patches, 225.0, 35.0).astype(np.float32) + grain(8)
        return base((115, 70, 40), 15) + grain(8)
    # Buildings: a wall colour with a regular grid of dark windows.
    wall = base(((150, 140, 125), (165, 90, 70), (130, 130, 138))[rng.integers(3)], 12)
    period, xs = rng.uniform(14, 24), np.arange(w)[None, :]
    windows = ((yy % period) < period * 0.45) & (
        (xs + rng.uniform(0, period)) % period < period * 0.5
    )
    return np.where(windows[..., None], base((45, 50, 65), 8), wall) + grain(7)


def _scene(rng: np.random.Generator, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """One scene: ``(image uint8 (h, w, 3), class ids (h, w) with -1 for void borders)``."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    horizon = h * rng.uniform(0.28, 0.55) + rng.uniform(-0.12, 0.12) * (xx - w / 2)
    labels = np.where(yy < horizon, SKY, rng.choice([GRASS, WATER, ROAD], p=[0.5, 0.25, 0.25]))
    if rng.random() < 0.6:  # a second, nearer ground band with a wavy edge
        near = (
            horizon + (h - horizon) * rng.uniform(0.3, 0.7) + 6 * np.sin(xx / rng.uniform(15, 40))
        )
        labels = np.where(yy > near, rng.choice([GRASS, ROAD, WATER], p=[0.6, 0.2, 0.2]), labels)
    if rng.random() < 0.3:  # a road running into the distance
        mid, half = w * rng.uniform(0.3, 0.7), w * rng.uniform(0.15, 0.3)
        frac = np.clip((yy - horizon) / np.maximum(h - horizon, 1), 0, 1)
        labels = np.where((yy > horizon) & (np.abs(xx - mid) < half * frac), ROAD, labels)
    for _ in range(rng.integers(0, 3)):
        x0 = rng.uniform(-0.1, 0.8) * w
        base_y = horizon + rng.uniform(0, 12)
        if rng.random() < 0.5:
            x1, top = x0 + rng.uniform(0.15, 0.4) * w, h * rng.uniform(0.05, 0.25)
            mask = (xx > x0) & (xx < x1) & (yy > top) & (yy < base_y)
            labels = np.where(mask, BUILDING, labels)
        else:
            crown = np.zeros((h, w), dtype=bool)
            cx, cy, r = x0 + 0.1 * w, h * rng.uniform(0.2, 0.4), rng.uniform(0.08, 0.16) * w
            for _ in range(rng.integers(3, 6)):
                ox, oy, rr = rng.uniform(-r, r), rng.uniform(-r, r * 0.6), r * rng.uniform(0.6, 1.0)
                crown |= (xx - cx - ox) ** 2 + (yy - cy - oy) ** 2 < rr**2
            labels = np.where(
                crown | ((np.abs(xx - cx) < r * 0.15) & (yy > cy) & (yy < base_y)), TREE, labels
            )
    if rng.random() < 0.5:  # a cow standing on the ground
        cx, r = rng.uniform(0.2, 0.8) * w, rng.uniform(0.08, 0.15) * w
        cy = min(float(horizon.max()) + rng.uniform(0.3, 0.8) * (h - horizon.max()), h - r)
        body = ((xx - cx) / r) ** 2 + ((yy - cy) / (0.55 * r)) ** 2 < 1
        head = (xx - cx - 1.1 * r) ** 2 + (yy - cy + 0.4 * r) ** 2 < (0.35 * r) ** 2
        legs = (yy > cy) & (yy < cy + r) & (np.abs(np.abs(xx - cx) - 0.6 * r) < 0.1 * r)
        labels = np.where(body | head | legs, COW, labels)

    image = np.zeros((h, w, 3), dtype=np.float32)
    for cls in np.unique(labels):
        image = np.where((labels == cls)[..., None], _texture(rng, int(cls), h, w, yy), image)
    image *= np.float32(rng.uniform(0.85, 1.15))
    # Like MSRC's hand labelling, leave a void band a few pixels wide along every boundary.
    edge = np.zeros((h, w), dtype=bool)
    edge[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    edge[1:, :] |= labels[1:, :] != labels[:-1, :]
    for _ in range(int(rng.integers(1, 4))):
        grown = edge.copy()
        grown[1:] |= edge[:-1]
        grown[:-1] |= edge[1:]
        grown[:, 1:] |= edge[:, :-1]
        grown[:, :-1] |= edge[:, 1:]
        edge = grown
    return np.clip(np.rint(image), 0, 255).astype(np.uint8), np.where(edge, -1, labels)


def render_scenes(count: int, seed: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Deterministic scenes at 320x213 or 213x320: ``(images, colour targets)``, both uint8."""
    images: list[np.ndarray] = []
    targets: list[np.ndarray] = []
    for image, target in _iter_scenes(count, seed):
        images.append(image)
        targets.append(target)
    return images, targets


def _iter_scenes(count: int, seed: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    for _ in range(count):
        h, w = _SHAPES[int(rng.random() < 0.35)]  # mostly landscape, like MSRC
        image, labels = _scene(rng, h, w)
        yield image, labels_to_colours(labels)


@register
class SegmentationKind(DatasetKind):
    name = "segmentation"

    def data_files(self, root: Path) -> list[str]:
        root = Path(root)
        image_files, target_files = _files(read_image_list(root))
        for name in image_files + target_files:
            if not (root / name).is_file():
                raise DatasetError(f"{root / name} is missing but {root / LIST_NAME} lists it")
        return [LIST_NAME, *image_files, *target_files]

    def read(self, root: Path, dataset_hash: str) -> Dataset:
        inputs, labels, ids, report = read_msrc(Path(root))
        return Dataset(self.name, inputs, labels, dataset_hash, ids, report)

    def synth(self, root: Path, count: int, seed: int) -> None:
        if count < 1:
            raise DatasetError("a synthetic segmentation set needs at least one image")
        # Streamed to disk: a large set never sits in memory as decoded bitmaps.
        ids = [f"synth_{i:05d}" for i in range(count)]
        _write_pairs(Path(root), _iter_scenes(count, seed), ids)

    def demo_models(self, seed: int, progress: bool) -> DemoModels:
        from eval_data.kinds.segmentation.demo import demo_models

        return demo_models(seed, progress)
