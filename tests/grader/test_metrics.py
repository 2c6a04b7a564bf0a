"""Metrics and output validation of the two task kinds, against hand-worked values and the course.

The course's own evaluation loops are re-implemented here in plain torch (batch size 1 for
segmentation, per-image ``MSELoss`` on ``.view(-1, 15, 2)`` for keypoints); the grader's numpy
metrics must agree with them to 1e-6.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from grader.errors import GradingError
from grader.kinds import get_kind, nonfinite_message
from grader.kinds.keypoints import keypoint_metrics
from grader.kinds.segmentation import NUM_CLASSES, segmentation_metrics

KEYPOINTS = get_kind("keypoints")
SEGMENTATION = get_kind("segmentation")


# --- keypoints: hand-worked values -------------------------------------------------------------


def test_it_computes_keypoint_mse_and_score_by_hand() -> None:
    # Image 0 is off by 0.5 everywhere (MSE 0.25); image 1 is off by 0.25 on half its values
    # (MSE 0.0625 / 2 = 0.03125). Mean of the two: 0.140625; score 1 / 0.28125 = 32 / 9.
    labels = np.zeros((2, 30), dtype=np.float32)
    predictions = np.zeros((2, 30), dtype=np.float32)
    predictions[0] = 0.5
    predictions[1, :15] = -0.25
    metrics = keypoint_metrics(predictions, labels)
    assert metrics["mse"] == 0.140625
    assert metrics["score"] == pytest.approx(32 / 9, rel=1e-12)
    assert metrics["count"] == 2


def test_it_treats_keypoint_mse_as_the_mean_over_all_values() -> None:
    labels = np.array([[0.0] * 30, [0.5] * 30], dtype=np.float32)
    predictions = np.array([[0.5] * 30, [0.5] * 29 + [0.0]], dtype=np.float32)
    # Per image: 0.25 and 0.25 / 30; their mean equals the mean over all 60 values.
    expected = (0.25 + 0.25 / 30) / 2
    assert keypoint_metrics(predictions, labels)["mse"] == pytest.approx(expected, rel=1e-12)


def test_it_gives_an_infinite_score_for_a_zero_mse() -> None:
    labels = np.linspace(-1, 1, 60, dtype=np.float32).reshape(2, 30)
    metrics = keypoint_metrics(labels.copy(), labels)
    assert metrics["mse"] == 0.0
    assert metrics["score"] == math.inf
    assert KEYPOINTS.passed(metrics, 100.0)


def test_it_passes_a_keypoint_score_of_exactly_the_threshold() -> None:
    assert KEYPOINTS.default_threshold == 100.0
    assert KEYPOINTS.passed({"score": 100.0}, 100.0)
    assert not KEYPOINTS.passed({"score": float(np.nextafter(100.0, 0.0))}, 100.0)
    # MSE 1/256 (exact in binary) scores 128: passes; MSE 1/64 scores 32: fails.
    labels = np.zeros((1, 30), dtype=np.float32)
    assert KEYPOINTS.passed(keypoint_metrics(np.full((1, 30), 0.0625, np.float32), labels), 100)
    assert not KEYPOINTS.passed(keypoint_metrics(np.full((1, 30), 0.125, np.float32), labels), 100)


def test_it_never_passes_a_nan_or_missing_score() -> None:
    assert not KEYPOINTS.passed({"score": float("nan")}, 0.0)
    assert not SEGMENTATION.passed({"accuracy": None}, 0.0)


# --- segmentation: hand-worked values ----------------------------------------------------------


def _hand_example() -> tuple[np.ndarray, np.ndarray]:
    """Three 2x2 images: a mixed one, an all-void one and one with a wrong pixel."""
    targets = np.array(
        [
            [[0, 1], [1, -1]],
            [[-1, -1], [-1, -1]],
            [[2, 2], [2, 0]],
        ],
        dtype=np.int64,
    )
    predictions = np.array(
        [
            [[0, 1], [0, 5]],  # 2 of 3 labelled pixels right; the 5 sits on a void pixel
            [[3, 3], [3, 3]],  # all void: skipped, and its predictions count nowhere
            [[2, 2], [0, 0]],  # 3 of 4 right
        ],
        dtype=np.uint8,
    )
    return predictions, targets


def test_it_averages_per_image_accuracy_over_non_void_pixels() -> None:
    predictions, targets = _hand_example()
    metrics = segmentation_metrics(predictions, targets)
    assert metrics["accuracy"] == pytest.approx((2 / 3 + 3 / 4) / 2, abs=1e-15)
    assert metrics["count"] == 2
    assert metrics["skipped_void_only"] == 1


def test_it_pools_accuracy_over_all_labelled_pixels() -> None:
    predictions, targets = _hand_example()
    assert segmentation_metrics(predictions, targets)["pooled_accuracy"] == pytest.approx(5 / 7)


def test_it_computes_per_class_accuracy_and_iou_by_hand() -> None:
    predictions, targets = _hand_example()
    metrics = segmentation_metrics(predictions, targets)
    acc, iou = metrics["per_class_accuracy"], metrics["per_class_iou"]
    assert len(acc) == len(iou) == NUM_CLASSES
    # class 0: 2 true pixels, both found; predicted 4 times on labelled pixels -> IoU 2 / 4
    assert acc[0] == 1.0
    assert iou[0] == 0.5
    # class 1: 2 true pixels, 1 found; predicted once -> IoU 1 / (2 + 1 - 1)
    assert acc[1] == 0.5
    assert iou[1] == 0.5
    # class 2: 3 true pixels, 2 found; predicted twice -> IoU 2 / 3
    assert acc[2] == pytest.approx(2 / 3)
    assert iou[2] == pytest.approx(2 / 3)
    # class 3 is only predicted on the all-void image, class 5 only on a void pixel: absent
    assert acc[3] is None and iou[3] is None
    assert acc[5] is None and iou[5] is None
    assert all(v is None for v in acc[6:] + iou[6:])


def test_it_counts_a_wrong_prediction_of_an_absent_class_against_the_true_class_only() -> None:
    # 3x3, one image: class 4 everywhere except a void corner; 2 pixels predicted as class 7,
    # which never occurs in the targets.
    targets = np.full((1, 3, 3), 4, dtype=np.int64)
    targets[0, 0, 0] = -1
    predictions = np.full((1, 3, 3), 4, dtype=np.uint8)
    predictions[0, 1, 1] = 7
    predictions[0, 2, 2] = 7
    metrics = segmentation_metrics(predictions, targets)
    assert metrics["accuracy"] == pytest.approx(6 / 8)
    assert metrics["per_class_accuracy"][4] == pytest.approx(6 / 8)
    assert metrics["per_class_iou"][4] == pytest.approx(6 / 8)
    assert metrics["per_class_accuracy"][7] is None
    assert metrics["per_class_iou"][7] is None


def test_it_reports_nan_accuracy_when_every_image_is_void() -> None:
    targets = np.full((2, 2, 2), -1, dtype=np.int64)
    metrics = segmentation_metrics(np.zeros((2, 2, 2), dtype=np.uint8), targets)
    assert math.isnan(metrics["accuracy"])
    assert math.isnan(metrics["pooled_accuracy"])
    assert metrics["count"] == 0
    assert metrics["skipped_void_only"] == 2
    assert not SEGMENTATION.passed(metrics, 0.0)


# --- both metrics against the course's evaluation loops ----------------------------------------


def _course_segmentation_accuracy(outputs: torch.Tensor, targets: torch.Tensor) -> float:
    """The course's loop with batch size 1; all-void images (NaN) are skipped."""
    accuracies = []
    for i in range(len(outputs)):
        out, target = outputs[i : i + 1], targets[i : i + 1]
        preds = torch.argmax(out, 1)
        mask = target >= 0
        acc = (preds == target)[mask].float().mean()
        if not torch.isnan(acc):
            accuracies.append(float(acc))
    return float(np.mean(accuracies))


def test_it_matches_the_course_segmentation_loop_on_random_data() -> None:
    gen = torch.Generator().manual_seed(3)
    n, size = 5, 240
    outputs = torch.randn(n, NUM_CLASSES, size, size, generator=gen)
    targets = torch.randint(-1, NUM_CLASSES, (n, size, size), generator=gen)
    targets[2] = -1  # one all-void image
    targets[4, : size // 2] = -1  # half void
    # Make the model right about half the time, so accuracy is not near 1/23.
    right = torch.rand(n, size, size, generator=gen) < 0.5
    boost = torch.nn.functional.one_hot(targets.clamp(min=0), NUM_CLASSES).permute(0, 3, 1, 2)
    outputs = outputs + 10.0 * boost * right.unsqueeze(1)

    compact, n_nan, n_inf = SEGMENTATION.check_batch(outputs.numpy(), n, {})
    assert (n_nan, n_inf) == (0, 0)
    metrics = segmentation_metrics(SEGMENTATION.check_predictions(compact, n, {}), targets.numpy())
    expected = _course_segmentation_accuracy(outputs, targets)
    assert 0.3 < expected < 0.8
    assert abs(metrics["accuracy"] - expected) < 1e-6
    assert metrics["skipped_void_only"] == 1
    assert metrics["count"] == n - 1


def _course_keypoint_mse(outputs: torch.Tensor, labels: torch.Tensor) -> float:
    """The course's keypoint loop: the mean over images of the per-image MSE loss."""
    criterion = torch.nn.MSELoss()
    losses = [
        float(criterion(outputs[i].view(-1, 15, 2), labels[i].view(-1, 15, 2)))
        for i in range(len(outputs))
    ]
    return float(np.mean(losses))


@pytest.mark.parametrize("shape", [(30,), (15, 2), (1, 1, 30)])
def test_it_matches_the_course_keypoint_loop_on_random_data(shape: tuple[int, ...]) -> None:
    gen = torch.Generator().manual_seed(5)
    n = 11
    labels = torch.rand(n, 30, generator=gen) * 2 - 1
    outputs = (labels + 0.05 * torch.randn(n, 30, generator=gen)).reshape(n, *shape)

    compact, _, _ = KEYPOINTS.check_batch(outputs.numpy(), n, {})
    metrics = keypoint_metrics(KEYPOINTS.check_predictions(compact, n, {}), labels.numpy())
    expected = _course_keypoint_mse(outputs, labels)
    assert abs(metrics["mse"] - expected) < 1e-6
    assert metrics["score"] == pytest.approx(1 / (2 * expected), rel=1e-5)


# --- output validation -------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(4, 30), (4, 15, 2), (4, 1, 1, 30), (4, 30, 1)])
def test_it_accepts_every_keypoint_layout_the_course_view_accepts(shape: tuple[int, ...]) -> None:
    raw = np.arange(4 * 30, dtype=np.float32).reshape(shape)
    compact, n_nan, n_inf = KEYPOINTS.check_batch(raw, 4, {})
    assert compact.shape == (4, 30)
    assert compact.dtype == np.float32
    np.testing.assert_array_equal(compact, raw.reshape(4, 30))
    assert (n_nan, n_inf) == (0, 0)


@pytest.mark.parametrize(
    ("shape", "shown"),
    [
        ((4, 15), "(4, 15)"),
        ((4, 31), "(4, 31)"),
        ((2, 60), "(2, 60)"),  # the right number of values, but not per image
        ((120,), "(120,)"),
        ((4, 2, 15, 2), "(4, 2, 15, 2)"),
    ],
)
def test_it_rejects_keypoint_shapes_with_a_message_the_student_can_act_on(
    shape: tuple[int, ...], shown: str
) -> None:
    with pytest.raises(GradingError) as info:
        KEYPOINTS.check_batch(np.zeros(shape, dtype=np.float32), 4, {})
    assert info.value.code == "output_shape"
    assert f"output shape {shown} for a batch of 4 images" in info.value.message
    assert "30 values per image" in info.value.message
    assert "N = 4" in info.value.message


def test_it_rejects_a_segmentation_output_of_the_wrong_size() -> None:
    with pytest.raises(GradingError) as info:
        SEGMENTATION.check_batch(np.zeros((2, 23, 120, 120), dtype=np.float32), 2, {})
    assert info.value.code == "output_shape"
    assert "output shape (2, 23, 120, 120)" in info.value.message
    assert "(N, 23, 240, 240)" in info.value.message


@pytest.mark.parametrize("dtype", [np.bool_, np.complex64, np.object_, np.str_])
def test_it_rejects_outputs_that_are_not_numbers(dtype: type) -> None:
    with pytest.raises(GradingError) as info:
        KEYPOINTS.check_batch(np.zeros((2, 30), dtype=dtype), 2, {})
    assert info.value.code == "output_dtype"
    assert "floating-point" in info.value.message


def test_it_counts_images_with_nan_and_inf_across_batches() -> None:
    rng = np.random.default_rng(0)
    total, batch = 298, 32
    outputs = rng.random((total, 30), dtype=np.float32)
    nan_images = rng.choice(total, 12, replace=False)
    outputs[nan_images, 7] = np.nan
    outputs[nan_images[:3], 8] = np.nan  # a second NaN in the same image counts once
    outputs[[5, 200], 0] = np.inf
    outputs[250, :] = -np.inf
    n_nan = n_inf = 0
    for start in range(0, total, batch):
        chunk = outputs[start : start + batch]
        _, nan_here, inf_here = KEYPOINTS.check_batch(chunk, len(chunk), {})
        n_nan += nan_here
        n_inf += inf_here
    assert (n_nan, n_inf) == (12, 3)
    message = nonfinite_message(n_nan, n_inf, total)
    assert message.startswith("your model returned NaN for 12 of 298 images")
    assert "infinity for 3 of 298 images" in message
    assert nonfinite_message(0, 1, 5).startswith("your model returned infinity for 1 of 5 images")


# --- check_predictions: what the parent accepts from the child ---------------------------------


def test_it_accepts_well_formed_predictions_from_the_child() -> None:
    keypoints = np.zeros((3, 30), dtype=np.float32)
    assert KEYPOINTS.check_predictions(keypoints, 3, {}) is keypoints
    classes = np.full((2, 240, 240), NUM_CLASSES - 1, dtype=np.uint8)
    assert SEGMENTATION.check_predictions(classes, 2, {}) is classes


@pytest.mark.parametrize(
    ("task", "predictions", "count"),
    [
        ("keypoints", np.zeros((3, 30), dtype=np.float64), 3),
        ("keypoints", np.zeros((3, 30), dtype=np.int32), 3),
        ("keypoints", np.zeros((2, 30), dtype=np.float32), 3),
        ("keypoints", np.zeros((3, 15, 2), dtype=np.float32), 3),
        ("segmentation", np.zeros((2, 240, 240), dtype=np.int64), 2),
        ("segmentation", np.zeros((2, 240, 239), dtype=np.uint8), 2),
        ("segmentation", np.zeros((2, 23, 240, 240), dtype=np.uint8), 2),
    ],
)
def test_it_rejects_predictions_of_the_wrong_dtype_or_shape(
    task: str, predictions: np.ndarray, count: int
) -> None:
    with pytest.raises(GradingError) as info:
        get_kind(task).check_predictions(predictions, count, {})
    assert info.value.code == "bad_predictions"
    assert "expected" in info.value.detail


@pytest.mark.parametrize("class_id", [NUM_CLASSES, 255])
def test_it_rejects_class_ids_out_of_range(class_id: int) -> None:
    predictions = np.zeros((2, 240, 240), dtype=np.uint8)
    predictions[1, 17, 3] = class_id
    with pytest.raises(GradingError) as info:
        SEGMENTATION.check_predictions(predictions, 2, {})
    assert info.value.code == "bad_predictions"
    assert f"class id {class_id} out of range" in info.value.detail


def test_it_rejects_non_finite_keypoints_the_child_let_through() -> None:
    predictions = np.zeros((3, 30), dtype=np.float32)
    predictions[1, 4] = np.nan
    with pytest.raises(GradingError) as info:
        KEYPOINTS.check_predictions(predictions, 3, {})
    assert info.value.code == "output_not_finite"
