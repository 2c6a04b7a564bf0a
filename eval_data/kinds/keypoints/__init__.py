"""Facial keypoints: the Kaggle facial-keypoints CSV as the course ships it, plus a generator.

``test.csv`` holds 30 keypoint columns (pixel coordinates, x and y interleaved) and an ``Image``
column of 9216 space-separated grey values. The reader mirrors the course's loader: rows with a
missing value are dropped, images become ``grey / 255`` and keypoints ``(kp - 48) / 48``.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from eval_data.dataset import Dataset, DatasetError
from eval_data.kinds import DatasetKind, register

if TYPE_CHECKING:
    from eval_data.demo_models import DemoModels

SIZE = 96
PIXELS = SIZE * SIZE
CSV_NAME = "test.csv"
IMAGE_COLUMN = "Image"
KEYPOINT_NAMES = [
    "left_eye_center",
    "right_eye_center",
    "left_eye_inner_corner",
    "left_eye_outer_corner",
    "right_eye_inner_corner",
    "right_eye_outer_corner",
    "left_eyebrow_inner_end",
    "left_eyebrow_outer_end",
    "right_eyebrow_inner_end",
    "right_eyebrow_outer_end",
    "nose_tip",
    "mouth_left_corner",
    "mouth_right_corner",
    "mouth_center_top_lip",
    "mouth_center_bottom_lip",
]
KEYPOINT_COLUMNS = [f"{name}_{axis}" for name in KEYPOINT_NAMES for axis in "xy"]


def normalise(keypoints_px: np.ndarray) -> np.ndarray:
    """Pixel coordinates to the course's ``[-1, 1]`` range, computed in float64 like pandas."""
    return ((np.asarray(keypoints_px, dtype=np.float64) - 48.0) / 48.0).astype(np.float32)


def _is_missing(cell: str) -> bool:
    # pandas writes NaN as an empty cell; a literal "nan" is the other spelling it reads as NaN.
    text = cell.strip()
    return text == "" or text.lower() == "nan"


def _column_indices(header: list[str], path: Path) -> tuple[list[int], int, int]:
    """Positions of the keypoint columns and the image column; the width every row must have."""
    names = [h.strip() for h in header]
    # pandas' to_csv writes its index as a leading column with an empty header.
    extra = names[:1] if names and (names[0] == "" or names[0].startswith("Unnamed")) else []
    named = names[len(extra) :]
    expected = {*KEYPOINT_COLUMNS, IMAGE_COLUMN}
    if set(named) != expected or len(named) != len(expected):
        missing = sorted(expected - set(named))
        unexpected = sorted({n for n in named if n not in expected or named.count(n) > 1})
        raise DatasetError(
            f"{path}: header does not have the 30 keypoint columns and {IMAGE_COLUMN!r}"
            f" (missing: {missing or 'none'}; unexpected or repeated: {unexpected or 'none'})"
        )
    return [names.index(c) for c in KEYPOINT_COLUMNS], names.index(IMAGE_COLUMN), len(names)


def read_keypoints_csv(path: Path) -> tuple[np.ndarray, np.ndarray, list[str], dict[str, Any]]:
    """Read one keypoints CSV into ``(inputs (N,1,96,96), labels (N,30), ids, report)``."""
    path = Path(path)
    images: list[np.ndarray] = []
    keypoints: list[list[float]] = []
    ids: list[str] = []
    dropped = 0
    try:
        # utf-8-sig: a file saved by a spreadsheet program starts with a byte-order mark.
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                raise DatasetError(f"{path} is empty (no header row)")
            kp_cols, image_col, width = _column_indices(header, path)
            for row_number, row in enumerate(reader):
                where = f"{path}, row {row_number} (line {reader.line_num})"
                if not row:
                    continue
                if len(row) != width:
                    raise DatasetError(f"{where}: {len(row)} fields, the header has {width}")
                cells = [row[i] for i in kp_cols]
                if any(_is_missing(c) for c in cells) or _is_missing(row[image_col]):
                    dropped += 1
                    continue
                try:
                    values = [float(c) for c in cells]
                    pixels = np.array(row[image_col].split(), dtype=np.int64)
                except ValueError as exc:
                    raise DatasetError(f"{where}: not a number ({exc})") from None
                if not all(math.isfinite(v) for v in values):
                    raise DatasetError(f"{where}: keypoint values must be finite numbers")
                if pixels.size != PIXELS:
                    raise DatasetError(f"{where}: image has {pixels.size} values, not {PIXELS}")
                if pixels.min() < 0 or pixels.max() > 255:
                    raise DatasetError(f"{where}: grey values must lie in 0..255")
                images.append(pixels.astype(np.uint8))
                keypoints.append(values)
                ids.append(str(row_number))
    except OSError as exc:
        raise DatasetError(f"{path} cannot be read: {exc}") from None
    except (csv.Error, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path} is not a readable CSV file: {exc}") from None
    if not images:
        raise DatasetError(f"{path} has no usable rows ({dropped} dropped for missing values)")
    # Same arithmetic as the course's loader: uint8 image through ToTensor, i.e. float32 / 255.
    inputs = np.stack(images).reshape(-1, 1, SIZE, SIZE).astype(np.float32) / np.float32(255)
    labels = normalise(np.array(keypoints, dtype=np.float64))
    return inputs, labels, ids, {"dropped_rows": dropped}


def write_keypoints_csv(path: Path, images_uint8: np.ndarray, keypoints_px: np.ndarray) -> None:
    """Write images ``(N,96,96)`` uint8 and pixel keypoints ``(N,30)`` in the course's CSV format.

    Keypoints get three decimals (NaN becomes an empty cell, like pandas writes it), so the same
    arrays always give the same bytes.
    """
    images = np.asarray(images_uint8)
    points = np.asarray(keypoints_px, dtype=np.float64)
    if images.ndim != 3 or images.shape[1:] != (SIZE, SIZE) or images.dtype != np.uint8:
        raise ValueError(
            f"images must be uint8 (N, {SIZE}, {SIZE}), got {images.dtype}{images.shape}"
        )
    if points.shape != (len(images), 30):
        raise ValueError(f"keypoints must be (N, 30) with N = {len(images)}, got {points.shape}")
    with Path(path).open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow([*KEYPOINT_COLUMNS, IMAGE_COLUMN])
        for image, row in zip(images, points, strict=True):
            cells = ["" if math.isnan(v) else f"{v:.3f}" for v in row.tolist()]
            writer.writerow([*cells, " ".join(map(str, image.reshape(-1).tolist()))])


# Template face in pixel coordinates, close to the Kaggle means (the subject's left eye is on
# the image's right). Features are drawn in this frame and then moved as one rigid face.
_CENTRE = np.array([48.0, 52.0])
_EYE = (18.0, 37.8)  # half the eye distance, eye height
_BROW = (-10.0, 13.5, 29.6)  # inner and outer end x offsets from the eye centre, height


def _ellipse_alpha(
    u: np.ndarray, v: np.ndarray, a: np.ndarray | float, b: np.ndarray | float, px: np.ndarray
) -> np.ndarray:
    """Soft coverage of an axis-aligned ellipse; ``px`` is one image pixel in template units."""
    dist = (np.sqrt((u / a) ** 2 + (v / b) ** 2) - 1.0) * np.minimum(a, b)
    return np.clip(0.5 - dist / px, 0.0, 1.0)


def _segment_alpha(
    x: np.ndarray, y: np.ndarray, p: np.ndarray, q: np.ndarray, width: float, px: np.ndarray
) -> np.ndarray:
    """Soft coverage of a thick line from ``p`` to ``q`` (each ``(n, 2, 1, 1)``)."""
    d = q - p
    t = ((x - p[:, 0]) * d[:, 0] + (y - p[:, 1]) * d[:, 1]) / (d[:, 0] ** 2 + d[:, 1] ** 2)
    t = np.clip(t, 0.0, 1.0)
    dist = np.hypot(x - p[:, 0] - t * d[:, 0], y - p[:, 1] - t * d[:, 1]) - width / 2
    return np.clip(0.5 - dist / px, 0.0, 1.0)


def _face_keypoints(rng: np.random.Generator, n: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Per-face template keypoints ``(n, 15, 2)`` and the shape parameters that drew them."""

    def u(lo: float, hi: float) -> np.ndarray:
        return rng.uniform(lo, hi, n)

    p = {
        "eye_dx": _EYE[0] + u(-2.0, 2.0),
        "eye_y": _EYE[1] + u(-2.0, 2.0),
        "eye_w": u(5.5, 8.0),
        "eye_h": u(2.5, 4.0),
        "brow_dy": u(-2.5, 2.5),
        "brow_tilt": u(-2.0, 2.0),
        "nose_y": 62.5 + u(-3.0, 3.0),
        "mouth_y": 76.0 + u(-3.0, 3.0),
        "mouth_w": u(11.0, 17.0),
        "mouth_h": u(2.0, 5.0),
    }
    cx = _CENTRE[0]
    ey, by = p["eye_y"], _BROW[2] + p["brow_dy"] + (p["eye_y"] - _EYE[1])
    kp = np.zeros((n, 15, 2))
    for sign, (centre, inner, outer, b_in, b_out) in ((1, (0, 2, 3, 6, 7)), (-1, (1, 4, 5, 8, 9))):
        ex = cx + sign * p["eye_dx"]
        kp[:, centre] = np.stack([ex, ey], 1)
        kp[:, inner] = np.stack([ex - sign * p["eye_w"], ey], 1)
        kp[:, outer] = np.stack([ex + sign * p["eye_w"], ey], 1)
        kp[:, b_in] = np.stack([ex + sign * _BROW[0], by], 1)
        kp[:, b_out] = np.stack([ex + sign * _BROW[1], by - p["brow_tilt"]], 1)
    kp[:, 10] = np.stack([np.full(n, cx), p["nose_y"]], 1)
    my = p["mouth_y"]
    kp[:, 11] = np.stack([cx + p["mouth_w"], my], 1)
    kp[:, 12] = np.stack([cx - p["mouth_w"], my], 1)
    kp[:, 13] = np.stack([np.full(n, cx), my - p["mouth_h"]], 1)
    kp[:, 14] = np.stack([np.full(n, cx), my + p["mouth_h"]], 1)
    return kp, p


def _pose(rng: np.random.Generator, template: np.ndarray) -> tuple[np.ndarray, ...]:
    """Shift (±10 px), scale (±15 %) and rotation (±8°) keeping every keypoint inside the image."""
    n = len(template)
    shift = np.zeros((n, 2))
    scale = np.ones(n)
    angle = np.zeros(n)
    todo = np.ones(n, dtype=bool)
    # Rejection sampling stays deterministic: the same seed draws the same sequence.
    while todo.any():
        k = int(todo.sum())
        shift[todo] = rng.uniform(-10.0, 10.0, (k, 2))
        scale[todo] = rng.uniform(0.85, 1.15, k)
        angle[todo] = np.deg2rad(rng.uniform(-8.0, 8.0, k))
        image_kp = _to_image(template, shift, scale, angle)
        todo = np.asarray(((image_kp < 2.0) | (image_kp > SIZE - 2.0)).any(axis=(1, 2)))
    return shift, scale, angle


def _to_image(
    template: np.ndarray, shift: np.ndarray, scale: np.ndarray, angle: np.ndarray
) -> np.ndarray:
    cos, sin = np.cos(angle)[:, None], np.sin(angle)[:, None]
    rel = (template - _CENTRE) * scale[:, None, None]
    rot = np.stack(
        [cos * rel[..., 0] - sin * rel[..., 1], sin * rel[..., 0] + cos * rel[..., 1]], -1
    )
    return rot + _CENTRE + shift[:, None, :]


def render_faces(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic face drawings: ``(images uint8 (N,96,96), keypoints in pixels (N,30))``.

    Pixel ``(row i, column j)`` covers ``[j, j+1) x [i, i+1)`` of the keypoint plane, so the
    image spans ``[0, 96]`` like the Kaggle coordinates.
    """
    rng = np.random.default_rng(seed)
    images = np.empty((count, SIZE, SIZE), dtype=np.uint8)
    points = np.empty((count, 30))
    for start in range(0, count, 256):  # chunks bound the memory of the (n, 96, 96) temporaries
        n = min(256, count - start)
        images[start : start + n], points[start : start + n] = _render_chunk(rng, n)
    return images, points


def _render_chunk(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    template, p = _face_keypoints(rng, n)
    shift, scale, angle = _pose(rng, template)

    def col(a: np.ndarray) -> np.ndarray:
        # float32 halves the drawing time; keypoints stay float64 (computed from the template).
        return np.asarray(a, dtype=np.float32).reshape(n, 1, 1)

    # Every pixel centre mapped back into the template frame, so features are drawn axis-aligned.
    grid = np.arange(SIZE, dtype=np.float32) + np.float32(0.5)
    gx, gy = grid[None, None, :], grid[None, :, None]
    dx = gx - col(_CENTRE[0] + shift[:, 0])
    dy = gy - col(_CENTRE[1] + shift[:, 1])
    cos, sin, s = col(np.cos(angle)), col(np.sin(angle)), col(scale)
    x = (cos * dx + sin * dy) / s + np.float32(_CENTRE[0])
    y = (-sin * dx + cos * dy) / s + np.float32(_CENTRE[1])
    px = 1.0 / s

    # Darker background with a gentle gradient, a bright face, then dark features on top.
    background = col(rng.uniform(20, 90, n)) + col(rng.uniform(-0.3, 0.3, n)) * (gx - 48)
    skin = col(rng.uniform(150, 215, n))
    shading = col(rng.uniform(-0.4, 0.4, n)) * (gy - 48)
    face = _ellipse_alpha(
        x - _CENTRE[0], y - _CENTRE[1], col(rng.uniform(35, 39, n)), col(rng.uniform(44, 48, n)), px
    )
    img = background + (skin + shading - background) * face

    def paint(alpha: np.ndarray, value: np.ndarray | float) -> None:
        nonlocal img
        img = img + (value - img) * alpha

    dark = skin - col(rng.uniform(80, 120, n))
    for eye, brow_in, brow_out in ((0, 6, 7), (1, 8, 9)):
        ex, ey = col(template[:, eye, 0]), col(template[:, eye, 1])
        eye_w, eye_h = col(p["eye_w"]), col(p["eye_h"])
        paint(_ellipse_alpha(x - ex, y - ey, eye_w + 1.0, eye_h + 1.0, px), dark)
        paint(_ellipse_alpha(x - ex, y - ey, eye_w, eye_h, px), 245.0)  # white of the eye
        paint(_ellipse_alpha(x - ex, y - ey, eye_h, eye_h, px), col(rng.uniform(10, 40, n)))
        ends = template[:, [brow_in, brow_out]].reshape(n, 2, 2, 1, 1).astype(np.float32)
        paint(_segment_alpha(x, y, ends[:, 0], ends[:, 1], 2.5, px), dark)
    nose = template[:, 10].reshape(n, 2, 1, 1).astype(np.float32)
    bridge = nose - np.array([0.0, 14.0], dtype=np.float32).reshape(1, 2, 1, 1)
    paint(0.35 * _segment_alpha(x, y, bridge, nose, 2.0, px), dark)
    paint(_ellipse_alpha(x - nose[:, 0], y - nose[:, 1], 5.0, 2.2, px), dark)
    mouth_y = col(p["mouth_y"])
    paint(
        _ellipse_alpha(x - _CENTRE[0], y - mouth_y, col(p["mouth_w"]), col(p["mouth_h"]), px),
        dark - 20,
    )

    img = img + rng.standard_normal(img.shape, dtype=np.float32) * col(rng.uniform(3.0, 12.0, n))
    images = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return images, _to_image(template, shift, scale, angle).reshape(n, 30)


@register
class KeypointsKind(DatasetKind):
    name = "keypoints"

    def data_files(self, root: Path) -> list[str]:
        if not (Path(root) / CSV_NAME).is_file():
            raise DatasetError(
                f"{Path(root) / CSV_NAME} is missing (a keypoints test set needs it)"
            )
        return [CSV_NAME]

    def read(self, root: Path, dataset_hash: str) -> Dataset:
        inputs, labels, ids, report = read_keypoints_csv(Path(root) / CSV_NAME)
        return Dataset(self.name, inputs, labels, dataset_hash, ids, report)

    def synth(self, root: Path, count: int, seed: int) -> None:
        if count < 1:
            raise DatasetError("a synthetic keypoints set needs at least one image")
        Path(root).mkdir(parents=True, exist_ok=True)
        images, points = render_faces(count, seed)
        write_keypoints_csv(Path(root) / CSV_NAME, images, points)

    def demo_models(self, seed: int, progress: bool) -> DemoModels:
        from eval_data.kinds.keypoints.demo import demo_models

        return demo_models(seed, progress)
