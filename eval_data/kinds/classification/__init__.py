"""Image classification: torchvision's ``ImageFolder`` layout, as the course's CIFAR-10 exercise
loads it, plus a generator of small labelled pictures.

``DIR/<class name>/<image>`` (subfolders allowed): the class folders, sorted by name, give the
class indices, and a class folder with no image keeps its index. The reader mirrors
torchvision's ``find_classes`` / ``make_dataset`` / ``pil_loader`` / ``ToTensor``: images are
found by extension, case-insensitively (``IMG_EXTENSIONS``), walking each class folder in
``sorted(os.walk(...))`` order with sorted file names and following links; other files are
ignored; every image is opened with Pillow and converted to RGB whatever its mode, then becomes
``uint8 / 255`` in float32, ``(N, 3, H, W)``. All images of a set must have one size.

One difference from torchvision, on purpose: names starting with ``.`` are skipped at every
level. torchvision would make a ``.ipynb_checkpoints`` folder that Jupyter leaves beside the
class folders class 0, shifting every other index, and would try to decode macOS's
``._name.png`` resource forks; the course's own class list has neither.

The manifest covers every class folder (``<class>/``, so adding or removing an empty class
changes the dataset hash) and every image file.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from eval_data.dataset import Dataset, DatasetError
from eval_data.kinds import DatasetKind, register

if TYPE_CHECKING:
    from eval_data.demo_models import DemoModels

#: torchvision's ``IMG_EXTENSIONS``, compared with the lower-cased file name
IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
#: side of the synthetic images, CIFAR's
SIZE = 32
#: the synthetic set's classes: five shapes and five textures, every colour random
CLASS_NAMES = (
    "checkerboard",
    "circle",
    "cross",
    "diagonal_stripes",
    "dots",
    "horizontal_stripes",
    "ring",
    "square",
    "triangle",
    "vertical_stripes",
)


def _visible(name: str) -> bool:
    return not name.startswith(".")


@dataclass(frozen=True)
class Layout:
    """What a folder holds: sorted class names, ``(relative path, class index)`` per image in
    reading order, and how many other files the class folders hold."""

    classes: list[str]
    images: list[tuple[str, int]]
    ignored_files: int


def find_classes(root: Path) -> list[str]:
    """Sorted names of the visible folders in ``root`` (links count, as in torchvision)."""
    try:
        with os.scandir(root) as entries:
            classes = sorted(e.name for e in entries if _visible(e.name) and e.is_dir())
    except FileNotFoundError:
        raise DatasetError(f"{root} does not exist") from None
    except NotADirectoryError:
        raise DatasetError(f"{root} is not a folder") from None
    except OSError as exc:
        raise DatasetError(f"{root} cannot be read: {exc}") from None
    if not classes:
        raise DatasetError(
            f"{root} has no class folders; a classification set is laid out as"
            f" {root}/<class name>/<image>.png, one folder per class (torchvision's ImageFolder)"
        )
    for name in classes:
        _check_name(root / name)
    return classes


def _check_name(path: Path) -> None:
    # The manifest hashes names as UTF-8; a name that is not (bytes from another system's
    # encoding) would fail there with a traceback instead of naming the file.
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        raise DatasetError(f"{path!r} has a name that is not valid UTF-8; rename it") from None


def _raise(exc: OSError) -> None:
    # os.walk skips folders it cannot list unless told otherwise: a silent hole in the test set.
    raise DatasetError(f"{exc.filename} cannot be read: {exc.strerror or exc}")


def _walk(folder: Path) -> list[tuple[str, list[str]]]:
    """``(folder, file names)`` under ``folder`` in ``sorted(os.walk(...))`` order, hidden ones
    left out; refuses a link back to a folder it is inside, which would repeat images."""
    found: list[tuple[str, list[str]]] = []
    for dirpath, dirnames, filenames in os.walk(folder, onerror=_raise, followlinks=True):
        dirnames[:] = [d for d in dirnames if _visible(d)]
        here = os.path.realpath(dirpath)
        for name in dirnames:
            target = os.path.realpath(os.path.join(dirpath, name))
            if here == target or here.startswith(target + os.sep):
                raise DatasetError(
                    f"{os.path.join(dirpath, name)} links to a folder it is inside; remove the link"
                )
        found.append((dirpath, [f for f in filenames if _visible(f)]))
    return sorted(found)


def scan(root: Path) -> Layout:
    """The classes and images of the folder ``root``, in the order torchvision reads them."""
    root = Path(root)
    classes = find_classes(root)
    images: list[tuple[str, int]] = []
    ignored = 0
    for index, name in enumerate(classes):
        for dirpath, filenames in _walk(root / name):
            for filename in sorted(filenames):
                path = Path(dirpath, filename)
                if not filename.lower().endswith(IMG_EXTENSIONS):
                    ignored += 1
                    continue
                _check_name(path)
                images.append((path.relative_to(root).as_posix(), index))
    return Layout(classes, images, ignored)


def load_rgb(path: Path) -> np.ndarray:
    """An image file as ``(H, W, 3)`` uint8, converted like torchvision's ``pil_loader``."""
    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB"), dtype=np.uint8)
    except FileNotFoundError:
        raise DatasetError(f"{path} is missing") from None
    except Exception as exc:
        # Pillow's decoders raise OSError, SyntaxError, ValueError, struct.error, ... on a
        # damaged file; to the operator they all mean the same.
        raise DatasetError(
            f"{path} is not a readable image ({type(exc).__name__}: {exc}); replace or remove it"
        ) from None


def _size(array: np.ndarray) -> str:
    return f"{array.shape[1]}x{array.shape[0]}"


def read_image_folder(
    root: Path,
) -> tuple[np.ndarray, np.ndarray, list[str], list[str], dict[str, Any]]:
    """An image folder as ``(inputs (N,3,H,W) float32, labels (N,) int64, ids, classes, report)``.

    ``ids`` are the images' POSIX paths relative to ``root``. Raises ``DatasetError`` for a
    folder with no image and for images of different sizes, naming the first odd one out.
    """
    root = Path(root)
    layout = scan(root)
    if not layout.images:
        raise DatasetError(
            f"none of the {len(layout.classes)} class folders in {root} holds an image"
            f" (file names ending in {', '.join(IMG_EXTENSIONS)}, any case)"
        )
    first_name = layout.images[0][0]
    first = load_rgb(root / first_name)
    inputs = np.empty((len(layout.images), 3, *first.shape[:2]), dtype=np.float32)
    for i, (name, _) in enumerate(layout.images):
        pixels = first if i == 0 else load_rgb(root / name)
        if pixels.shape != first.shape:
            raise DatasetError(
                f"{root / name} is {_size(pixels)} pixels but {root / first_name} is"
                f" {_size(first)}; every image of a classification set must have the same size"
                " (resize them to one size, the one the course's models take)"
            )
        # float32 / 255 is what ToTensor computes for a uint8 image.
        inputs[i] = pixels.transpose(2, 0, 1).astype(np.float32) / np.float32(255)
    labels = np.array([index for _, index in layout.images], dtype=np.int64)
    counts = np.bincount(labels, minlength=len(layout.classes))
    report = {
        "classes": len(layout.classes),
        "empty_classes": [c for c, n in zip(layout.classes, counts, strict=True) if n == 0],
        "ignored_files": layout.ignored_files,
        "image_size": _size(first),
    }
    ids = [name for name, _ in layout.images]
    return inputs, labels, ids, layout.classes, report


# --- the synthetic set -------------------------------------------------------------------------
#
# Every picture is a foreground colour on a background colour (both random, well apart), over a
# gentle gradient, with pixel noise. Shapes vary in position, size and rotation; textures in
# period, phase, angle and sharpness. Colour says nothing about the class: a model has to look
# at the geometry, which a small CNN learns in a few CPU seconds.

_GRID = np.arange(SIZE, dtype=np.float32) + np.float32(0.5)
_X, _Y = np.meshgrid(_GRID, _GRID)  # pixel centres; _X varies along a row


def _frame(rng: np.random.Generator, margin: float) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates around a random centre at least ``margin`` from the border, rotated."""
    cx, cy = rng.uniform(margin, SIZE - margin, 2)
    angle = rng.uniform(0.0, 2.0 * np.pi)
    cos, sin = np.float32(np.cos(angle)), np.float32(np.sin(angle))
    dx, dy = _X - np.float32(cx), _Y - np.float32(cy)
    return cos * dx + sin * dy, -sin * dx + cos * dy


def _coverage(distance: np.ndarray) -> np.ndarray:
    """Anti-aliased coverage from a signed distance in pixels (negative inside)."""
    return np.clip(np.float32(0.5) - distance, 0.0, 1.0)


def _circle(rng: np.random.Generator) -> np.ndarray:
    r = rng.uniform(5.0, 10.0)
    u, v = _frame(rng, r * 0.8)
    return _coverage(np.hypot(u, v) - np.float32(r))


def _ring(rng: np.random.Generator) -> np.ndarray:
    r, width = rng.uniform(6.0, 11.0), rng.uniform(1.6, 3.2)
    u, v = _frame(rng, r * 0.8)
    return _coverage(np.abs(np.hypot(u, v) - np.float32(r)) - np.float32(width / 2))


def _square(rng: np.random.Generator) -> np.ndarray:
    half = rng.uniform(4.5, 8.5)
    u, v = _frame(rng, half * 1.1)
    return _coverage(np.maximum(np.abs(u), np.abs(v)) - np.float32(half))


def _triangle(rng: np.random.Generator) -> np.ndarray:
    radius = rng.uniform(6.5, 11.5)  # circumradius; the inradius is half of it
    u, v = _frame(rng, radius * 0.7)
    sides = [
        np.float32(np.cos(a)) * u + np.float32(np.sin(a)) * v
        for a in (np.pi / 2, np.pi / 2 + 2 * np.pi / 3, np.pi / 2 + 4 * np.pi / 3)
    ]
    return _coverage(np.maximum(np.maximum(sides[0], sides[1]), sides[2]) - np.float32(radius / 2))


def _cross(rng: np.random.Generator) -> np.ndarray:
    arm, half_width = rng.uniform(6.0, 11.0), rng.uniform(1.2, 2.6)
    u, v = _frame(rng, arm * 0.8)
    au, av = np.abs(u), np.abs(v)
    bars = np.minimum(
        np.maximum(au - np.float32(arm), av - np.float32(half_width)),
        np.maximum(av - np.float32(arm), au - np.float32(half_width)),
    )
    return _coverage(bars)


def _dots(rng: np.random.Generator) -> np.ndarray:
    distance = np.full((SIZE, SIZE), np.inf, dtype=np.float32)
    for _ in range(int(rng.integers(4, 9))):
        r = rng.uniform(1.4, 2.6)
        cx, cy = rng.uniform(2.0, SIZE - 2.0, 2)
        dot = np.hypot(_X - np.float32(cx), _Y - np.float32(cy)) - np.float32(r)
        distance = np.minimum(distance, dot)
    return _coverage(distance)


def _stripes(rng: np.random.Generator, angle_deg: float) -> np.ndarray:
    """Stripes that run at ``angle_deg`` (0 = horizontal lines), give or take 12 degrees."""
    angle = np.deg2rad(angle_deg + rng.uniform(-12.0, 12.0))
    period, phase, sharp = rng.uniform(4.0, 9.0), rng.uniform(0, 2 * np.pi), rng.uniform(0.6, 2.0)
    across = -np.float32(np.sin(angle)) * _X + np.float32(np.cos(angle)) * _Y
    wave = np.sin(across * np.float32(2 * np.pi / period) + np.float32(phase))
    return np.clip(np.float32(0.5) + np.float32(sharp) * wave, 0.0, 1.0)


def _checkerboard(rng: np.random.Generator) -> np.ndarray:
    period, sharp = rng.uniform(6.0, 12.0), rng.uniform(1.0, 3.0)
    u, v = _frame(rng, 0.0)
    u, v = u * np.float32(2 * np.pi / period), v * np.float32(2 * np.pi / period)
    return np.clip(np.float32(0.5) + np.float32(sharp) * np.sin(u) * np.sin(v), 0.0, 1.0)


_DRAW: dict[str, Callable[[np.random.Generator], np.ndarray]] = {
    "checkerboard": _checkerboard,
    "circle": _circle,
    "cross": _cross,
    "diagonal_stripes": lambda rng: _stripes(rng, 45.0 if rng.random() < 0.5 else 135.0),
    "dots": _dots,
    "horizontal_stripes": lambda rng: _stripes(rng, 0.0),
    "ring": _ring,
    "square": _square,
    "triangle": _triangle,
    "vertical_stripes": lambda rng: _stripes(rng, 90.0),
}


def _colours(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Background and foreground colours far enough apart to see the pattern through noise."""
    while True:  # rejection sampling stays deterministic: the same seed draws the same sequence
        background, foreground = rng.uniform(0.0, 255.0, (2, 3)).astype(np.float32)
        if float(np.linalg.norm(foreground - background)) > 110.0:
            return background, foreground


def _picture(rng: np.random.Generator, name: str) -> np.ndarray:
    background, foreground = _colours(rng)
    alpha = _DRAW[name](rng)[..., None]
    gx, gy = rng.uniform(-1.2, 1.2, 2)
    gradient = (np.float32(gx) * (_X - 16) + np.float32(gy) * (_Y - 16))[..., None]
    image = background + (foreground - background) * alpha + gradient
    image += rng.standard_normal((SIZE, SIZE, 3), dtype=np.float32) * np.float32(
        rng.uniform(3.0, 16.0)
    )
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def render_pictures(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic pictures ``(images uint8 (N,32,32,3), class indices int64 (N,))``.

    Classes take turns (image ``i`` is class ``i % 10``), so every class gets ``count // 10``
    or one more image.
    """
    rng = np.random.default_rng(seed)
    labels = np.arange(count, dtype=np.int64) % len(CLASS_NAMES)
    images = np.empty((count, SIZE, SIZE, 3), dtype=np.uint8)
    for i, label in enumerate(labels.tolist()):
        images[i] = _picture(rng, CLASS_NAMES[label])
    return images, labels


def write_image_folder(
    root: Path, images_uint8: np.ndarray, labels: np.ndarray, classes: list[str]
) -> None:
    """Write ``(N, H, W, 3)`` uint8 images as ``root/<class>/<nnnnn>.png``; every class in
    ``classes`` gets its folder, with images or without."""
    root = Path(root)
    for name in classes:
        (root / name).mkdir(parents=True, exist_ok=True)
    numbers = [0] * len(classes)
    for image, label in zip(np.asarray(images_uint8), np.asarray(labels).tolist(), strict=True):
        path = root / classes[label] / f"{numbers[label]:05d}.png"
        Image.fromarray(np.asarray(image, dtype=np.uint8), "RGB").save(path, "PNG")
        numbers[label] += 1


@register
class ClassificationKind(DatasetKind):
    name = "classification"

    def data_files(self, root: Path) -> list[str]:
        layout = scan(Path(root))
        return [f"{name}/" for name in layout.classes] + [name for name, _ in layout.images]

    def read(self, root: Path, dataset_hash: str) -> Dataset:
        inputs, labels, ids, classes, report = read_image_folder(Path(root))
        return Dataset(self.name, inputs, labels, dataset_hash, ids, report, classes)

    def synth(self, root: Path, count: int, seed: int) -> None:
        if count < 1:
            raise DatasetError("a synthetic classification set needs at least one image")
        images, labels = render_pictures(count, seed)
        write_image_folder(Path(root), images, labels, list(CLASS_NAMES))

    def demo_models(self, seed: int, progress: bool) -> DemoModels:
        from eval_data.kinds.classification.demo import demo_models

        return demo_models(seed, progress)
