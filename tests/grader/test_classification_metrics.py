"""Classification: metrics against an independent computation, output checks, and ``check``.

The independent side decodes the files with Pillow itself, computes a model's scores from the
decoded pixels with integer arithmetic, picks the first maximum in a Python loop and counts hits
by hand; the grader's side reads the same folder with its reader and goes through
``check_batch`` / ``check_predictions`` / ``compute_metrics`` as a grading run does.
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from eval_data import Dataset
from eval_data import get_kind as get_dataset_kind
from eval_data.kinds.classification import CLASS_NAMES
from grader.errors import GradingError
from grader.kinds import get_kind, nonfinite_message
from grader.kinds.classification import MAX_CONFUSION_CLASSES, classification_metrics
from tests.grader.test_cli import only_json, run_grader

CLASSIFICATION = get_kind("classification")
READER = get_dataset_kind("classification")
H, W = 5, 7
#: class folders, "durian" left empty; sorted, so these are also the class indices
CLASSES = ["apple", "banana", "cherry", "durian", "elder"]
#: (file, Pillow mode, base colour): red-ish apples, green-ish bananas, ... some misleading
PICTURES = [
    ("apple/1.png", "RGB", (230, 40, 30)),
    ("apple/2.png", "P", (200, 200, 40)),
    ("apple/sub/3.bmp", "RGB", (40, 40, 40)),
    ("banana/1.png", "RGBA", (40, 230, 60)),
    ("banana/2.png", "L", (120, 120, 120)),
    ("banana/3.png", "RGB", (70, 200, 200)),
    ("banana/4.png", "RGB", (200, 200, 200)),
    ("cherry/1.png", "RGB", (30, 30, 220)),
    ("cherry/2.png", "P", (220, 30, 200)),
    ("cherry/3.tif", "RGB", (100, 140, 90)),
    ("elder/1.png", "L", (20, 20, 20)),
    ("elder/2.png", "RGB", (130, 20, 140)),
    ("elder/3.png", "RGBA", (150, 150, 150)),
]


def _write(root: Path, name: str, mode: str, colour: tuple[int, int, int], seed: int) -> None:
    rng = np.random.default_rng(seed)
    rgb = np.clip(np.array(colour) + rng.integers(-25, 26, (H, W, 3)), 0, 255).astype(np.uint8)
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(rgb, "RGB")
    if mode == "L":
        image = image.convert("L")
    elif mode == "RGBA":
        image = Image.fromarray(np.dstack([rgb, rng.integers(0, 256, (H, W), np.uint8)]), "RGBA")
    elif mode == "P":
        image = image.quantize(16)
    image.save(path)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    for seed, (name, mode, colour) in enumerate(PICTURES):
        _write(tmp_path, name, mode, colour, seed)
    (tmp_path / "durian").mkdir()
    (tmp_path / "elder" / "notes.txt").write_text("not an image\n")
    return tmp_path


def _scores_from_pixels(rgb: np.ndarray) -> list[float]:
    """The "model": channel means in quarter steps, coarse enough that scores tie.

    Column 3 repeats column 0 (a tie whenever red wins: the first index must win) and column 4
    is a constant 0.5 (ties with any channel in the 0.5 step).
    """
    sums = [int(rgb[..., c].astype(np.int64).sum()) for c in range(3)]
    red, green, blue = ((4 * s) // (255 * rgb.shape[0] * rgb.shape[1]) / 4 for s in sums)
    return [red, green, blue, red, 0.5]


def _model_output(inputs: np.ndarray) -> np.ndarray:
    """The same model on the reader's float inputs, as raw float32 scores ``(N, 5)``."""
    pixels = np.rint(inputs * 255).astype(np.uint8).transpose(0, 2, 3, 1)
    return np.array([_scores_from_pixels(p) for p in pixels], dtype=np.float32)


def _first_max(scores: list[float]) -> int:
    best = 0
    for k, value in enumerate(scores):
        if value > scores[best]:
            best = k
    return best


def _independent(root: Path) -> dict[str, Any]:
    """Predictions and figures from files decoded here, counted by hand."""
    confusion = [[0] * len(CLASSES) for _ in CLASSES]
    ties = 0
    for name, _, _ in PICTURES:
        with Image.open(root / name) as image:
            rgb = np.asarray(image.convert("RGB"))
        scores = _scores_from_pixels(rgb)
        ties += scores.count(max(scores)) > 1
        confusion[CLASSES.index(name.split("/")[0])][_first_max(scores)] += 1
    per_class: dict[str, float | None] = {}
    for c, name in enumerate(CLASSES):
        total = sum(confusion[c])
        per_class[name] = confusion[c][c] / total if total else None
    hits = sum(confusion[c][c] for c in range(len(CLASSES)))
    return {
        "accuracy": hits / len(PICTURES),
        "per_class_accuracy": per_class,
        "confusion": confusion,
        "count": len(PICTURES),
        "ties": ties,
    }


def _grade(dataset: Dataset, raw: np.ndarray, batch: int = 4) -> dict[str, Any]:
    """What a grading run does with raw outputs: per batch in the child, then the parent."""
    params = CLASSIFICATION.params_for(dataset)
    chunks = []
    for start in range(0, len(raw), batch):
        chunk = raw[start : start + batch]
        compact, n_nan, n_inf = CLASSIFICATION.check_batch(chunk, len(chunk), params)
        assert (n_nan, n_inf) == (0, 0)
        chunks.append(compact)
    predictions = CLASSIFICATION.check_predictions(np.concatenate(chunks), len(raw), params)
    return CLASSIFICATION.compute_metrics(predictions, dataset)


def test_it_matches_an_independent_count_with_ties_and_an_empty_class(folder: Path) -> None:
    dataset = READER.read(folder, "")
    assert dataset.classes == CLASSES
    assert CLASSIFICATION.params_for(dataset) == {"classes": 5}

    metrics = _grade(dataset, _model_output(dataset.inputs))
    expected = _independent(folder)

    assert expected["ties"] >= 5  # the example exercises ties, not just allows them
    assert 0.2 < expected["accuracy"] < 0.9
    assert metrics["accuracy"] == pytest.approx(expected["accuracy"], abs=1e-15)
    assert metrics["per_class_accuracy"] == expected["per_class_accuracy"]
    assert list(metrics["per_class_accuracy"]) == CLASSES
    assert metrics["per_class_accuracy"]["durian"] is None
    assert metrics["confusion"] == expected["confusion"]
    assert metrics["confusion"][3] == [0] * 5
    assert metrics["count"] == len(PICTURES)
    assert all(type(v) is int for row in metrics["confusion"] for v in row)


def test_ties_go_to_the_first_maximum_as_torch_argmax_picks_it() -> None:
    raw = np.array(
        [[1, 3, 3, 0], [2, 2, 2, 2], [0, 0, 0, 5], [-1, -1, -2, -1], [7, 1, 7, 7]],
        dtype=np.float32,
    )
    compact, _, _ = CLASSIFICATION.check_batch(raw, 5, {"classes": 4})
    assert compact.dtype == np.int32 and compact.shape == (5,)
    assert compact.tolist() == [1, 0, 3, 0, 0]
    assert compact.tolist() == torch.argmax(torch.from_numpy(raw), dim=1).tolist()


def test_it_computes_accuracy_per_class_and_confusion_by_hand() -> None:
    labels = np.array([0, 0, 0, 1, 1, 3], dtype=np.int64)
    predictions = np.array([0, 1, 0, 1, 3, 3], dtype=np.int32)
    metrics = classification_metrics(predictions, labels, ["a", "b", "c", "d"])
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    assert metrics["per_class_accuracy"] == {"a": 2 / 3, "b": 0.5, "c": None, "d": 1.0}
    assert metrics["confusion"] == [[2, 1, 0, 0], [0, 1, 0, 1], [0, 0, 0, 0], [0, 0, 0, 1]]
    assert metrics["count"] == 6


def test_the_confusion_matrix_stops_above_fifty_classes() -> None:
    assert MAX_CONFUSION_CLASSES == 50
    labels = np.arange(60, dtype=np.int64) % 51
    for num_classes, has_confusion in ((50, True), (51, False)):
        classes = [f"c{i:02d}" for i in range(num_classes)]
        truth = labels % num_classes
        metrics = classification_metrics(truth.astype(np.int32), truth, classes)
        assert ("confusion" in metrics) is has_confusion
        assert metrics["accuracy"] == 1.0 and len(metrics["per_class_accuracy"]) == num_classes


def test_metrics_refuse_indices_outside_the_classes() -> None:
    with pytest.raises(ValueError, match="outside the 3 classes"):
        classification_metrics(np.array([0, 3], np.int32), np.array([0, 1]), ["a", "b", "c"])


def test_it_passes_an_accuracy_of_exactly_the_threshold() -> None:
    assert CLASSIFICATION.default_threshold == 0.5
    assert CLASSIFICATION.passed({"accuracy": 0.5}, 0.5)
    assert not CLASSIFICATION.passed({"accuracy": float(np.nextafter(0.5, 0.0))}, 0.5)
    assert not CLASSIFICATION.passed({"accuracy": float("nan")}, 0.0)


def test_the_kind_reads_as_a_percentage_ranked_by_accuracy() -> None:
    assert CLASSIFICATION.score_key == "accuracy"
    assert CLASSIFICATION.score_display == "percent"
    assert CLASSIFICATION.score_label == "Accuracy"
    assert list(CLASSIFICATION.ranked_options) == ["accuracy"]
    assert CLASSIFICATION.figures == ()
    assert CLASSIFICATION.prediction_dtype == "int32"
    assert CLASSIFICATION.prediction_shape({"classes": 10}) == ()


def test_the_course_model_is_built_with_hparams_as_a_keyword() -> None:
    spec = CLASSIFICATION.course_model
    assert spec is not None
    assert (spec.module, spec.cls) == (
        "exercise_code.networks.classification_net",
        "ClassificationNet",
    )

    class ClassificationNet:
        def __init__(self, hparams: dict[str, Any] | None = None) -> None:
            self.hparams = hparams

    built = spec.build(ClassificationNet, {"lr": 1e-3})
    assert isinstance(built, ClassificationNet) and built.hparams == {"lr": 1e-3}


def test_demo_metrics_are_seeded_and_consistent() -> None:
    first = CLASSIFICATION.demo_metrics(random.Random(4), 1000)
    assert first == CLASSIFICATION.demo_metrics(random.Random(4), 1000)
    assert first != CLASSIFICATION.demo_metrics(random.Random(5), 1000)
    assert list(first["per_class_accuracy"]) == list(CLASS_NAMES)
    confusion = np.array(first["confusion"])
    assert confusion.sum() == first["count"] == 1000
    assert confusion.sum(axis=1).tolist() == [100] * 10
    assert first["accuracy"] == pytest.approx(np.trace(confusion) / 1000)
    assert 0.1 < first["accuracy"] < 1.0
    assert first["params"] > 0
    small = CLASSIFICATION.demo_metrics(random.Random(1), 7)  # fewer images than classes
    assert small["count"] == 7 and sum(v is None for v in small["per_class_accuracy"].values()) == 3


# --- the model's output, in the child ----------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "shown"),
    [
        ((4, 9), "(4, 9)"),
        ((4, 11), "(4, 11)"),
        ((4,), "(4,)"),
        ((40,), "(40,)"),
        ((4, 10, 1), "(4, 10, 1)"),
        ((2, 20), "(2, 20)"),
        ((4, 10, 1, 1), "(4, 10, 1, 1)"),
    ],
)
def test_it_rejects_shapes_with_a_message_the_student_can_act_on(
    shape: tuple[int, ...], shown: str
) -> None:
    with pytest.raises(GradingError) as info:
        CLASSIFICATION.check_batch(np.zeros(shape, dtype=np.float32), 4, {"classes": 10})
    assert info.value.code == "output_shape"
    message = info.value.message
    assert f"output shape {shown} for a batch of 4 images" in message
    assert "class scores of shape (N, 10)" in message
    assert "one column per class folder" in message
    assert "N = 4" in message


def test_without_data_any_number_of_classes_fits() -> None:
    for classes in (1, 2, 7, 100):
        raw = np.random.default_rng(classes).random((3, classes), dtype=np.float32)
        compact, _, _ = CLASSIFICATION.check_batch(raw, 3, {})
        assert compact.tolist() == raw.argmax(axis=1).tolist()
        assert CLASSIFICATION.check_predictions(compact, 3, {}) is compact
    for shape in ((3, 0), (3,), (3, 4, 1)):
        with pytest.raises(GradingError) as info:
            CLASSIFICATION.check_batch(np.zeros(shape, dtype=np.float32), 3, {})
        assert info.value.code == "output_shape"
        assert "(N, C)" in info.value.message


@pytest.mark.parametrize("dtype", [np.float16, np.float64, np.int64, np.uint8, np.int8])
def test_it_takes_any_real_number_type(dtype: type) -> None:
    raw = np.array([[1, 5, 2], [9, 0, 9], [0, 0, 1]]).astype(dtype)
    compact, n_nan, n_inf = CLASSIFICATION.check_batch(raw, 3, {"classes": 3})
    assert compact.dtype == np.int32 and compact.tolist() == [1, 0, 2]
    assert (n_nan, n_inf) == (0, 0)


@pytest.mark.parametrize("dtype", [np.bool_, np.complex64, np.str_])
def test_it_rejects_outputs_that_are_not_real_numbers(dtype: type) -> None:
    with pytest.raises(GradingError) as info:
        CLASSIFICATION.check_batch(np.zeros((2, 3), dtype=dtype), 2, {"classes": 3})
    assert info.value.code == "output_dtype"


def test_it_counts_images_with_nan_and_inf() -> None:
    raw = np.zeros((6, 4), dtype=np.float32)
    raw[1, 2] = np.nan
    raw[1, 3] = np.inf  # an image with both counts once for each
    raw[3, :] = np.nan
    raw[4, 0] = -np.inf
    _, n_nan, n_inf = CLASSIFICATION.check_batch(raw, 6, {"classes": 4})
    assert (n_nan, n_inf) == (2, 2)
    assert nonfinite_message(n_nan, n_inf, 6).startswith("your model returned NaN for 2 of 6")


# --- what the parent accepts from the child ----------------------------------------------------


def test_it_accepts_well_formed_predictions() -> None:
    predictions = np.array([0, 9, 3], dtype=np.int32)
    assert CLASSIFICATION.check_predictions(predictions, 3, {"classes": 10}) is predictions


@pytest.mark.parametrize(
    ("predictions", "count"),
    [
        (np.zeros(3, dtype=np.int64), 3),
        (np.zeros(3, dtype=np.float32), 3),
        (np.zeros(2, dtype=np.int32), 3),
        (np.zeros((3, 1), dtype=np.int32), 3),
        (np.zeros((3, 10), dtype=np.int32), 3),
    ],
)
def test_it_rejects_predictions_of_the_wrong_dtype_or_shape(
    predictions: np.ndarray, count: int
) -> None:
    with pytest.raises(GradingError) as info:
        CLASSIFICATION.check_predictions(predictions, count, {"classes": 10})
    assert info.value.code == "bad_predictions"
    assert "expected int32(3,)" in info.value.detail


@pytest.mark.parametrize("index", [10, 11, 2**31 - 1, -1, -(2**31)])
def test_it_rejects_class_indices_a_lying_child_sends_out_of_range(index: int) -> None:
    predictions = np.array([0, 5, index, 9], dtype=np.int32)
    with pytest.raises(GradingError) as info:
        CLASSIFICATION.check_predictions(predictions, 4, {"classes": 10})
    assert info.value.code == "bad_predictions"
    assert info.value.message == "the grader could not read your model's predictions"
    assert f"class index {index} out of range [0, 10)" in info.value.detail


def test_without_data_only_negative_indices_are_out_of_range() -> None:
    assert CLASSIFICATION.check_predictions(np.array([0, 500], np.int32), 2, {}).tolist() == [
        0,
        500,
    ]
    with pytest.raises(GradingError, match="predictions"):
        CLASSIFICATION.check_predictions(np.array([0, -1], np.int32), 2, {})


# --- ``python -m grader check`` without data ---------------------------------------------------


class Scores(nn.Module):
    """A tiny classifier with ``classes`` outputs, or a flat output when ``classes`` is 0."""

    def __init__(self, classes: int) -> None:
        super().__init__()
        self.flat = classes == 0
        self.head = nn.Linear(3, max(classes, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.head(x.mean(dim=(2, 3)))
        return out.flatten() if self.flat else out


def _export(model: nn.Module, path: Path) -> Path:
    program = torch.export.export(
        model.eval(), (torch.rand(2, 3, 32, 32),), dynamic_shapes=({0: torch.export.Dim("batch")},)
    )
    torch.export.save(program, path)
    return path


@pytest.mark.parametrize("classes", [1, 7, 10])
def test_check_without_data_accepts_any_number_of_classes(tmp_path: Path, classes: int) -> None:
    torch.manual_seed(0)
    model = _export(Scores(classes), tmp_path / "m.pt2")
    result = run_grader("check", model, "--challenge", "classification", "--no-sandbox", "--json")
    assert result.returncode == 0, result.stderr
    assert only_json(result.stdout) == {
        "task": "classification",
        "format": "pt2",
        "params": 4 * classes,
        "output_shape": "ok",
        "score": None,
    }


def test_check_without_data_rejects_a_flat_output(tmp_path: Path) -> None:
    model = _export(Scores(0), tmp_path / "flat.pt2")
    result = run_grader("check", model, "--challenge", "classification", "--no-sandbox")
    assert result.returncode == 2
    assert "rejected (output_shape): your model's output does not have the shape" in result.stderr
    # check prints the staff detail too: on the student's own machine it is theirs
    assert "output shape (2,) for a batch of 2 images" in result.stderr
    assert "(N, C)" in result.stderr


def test_an_accuracy_of_one_over_c_for_a_constant_answer(folder: Path) -> None:
    dataset = READER.read(folder, "")
    raw = np.tile(np.array([0, 0, 0, 0, 1], np.float32), (len(dataset), 1))  # always "elder"
    metrics = _grade(dataset, raw)
    assert metrics["accuracy"] == pytest.approx(3 / 13)
    assert metrics["per_class_accuracy"]["elder"] == 1.0
    assert math.isclose(sum(v or 0 for v in metrics["per_class_accuracy"].values()), 1.0)
