"""The facial-keypoints CSV reader on files written the way the course's files are."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from eval_data import DatasetError, get_kind
from eval_data.kinds.keypoints import (
    KEYPOINT_COLUMNS,
    read_keypoints_csv,
    render_faces,
    write_keypoints_csv,
)

HEADER = [*KEYPOINT_COLUMNS, "Image"]


def _image(values: dict[int, int] | None = None, fill: int = 0, count: int = 9216) -> str:
    pixels = [fill] * count
    for index, value in (values or {}).items():
        pixels[index] = value
    return " ".join(str(p) for p in pixels)


def _write(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _row(keypoints: list[str] | None = None, image: str | None = None) -> list[str]:
    return [*(keypoints or ["48"] * 30), _image() if image is None else image]


def test_values_are_normalised_like_the_course(tmp_path: Path) -> None:
    keypoints = ["48"] * 30
    keypoints[0], keypoints[1], keypoints[2], keypoints[29] = "96", "0", "60", "36.0"
    image = _image({0: 255, 1: 51, 9215: 128}, fill=0)
    path = _write(tmp_path / "test.csv", HEADER, [_row(keypoints, image)])

    inputs, labels, ids, report = read_keypoints_csv(path)

    assert inputs.shape == (1, 1, 96, 96) and inputs.dtype == np.float32
    assert labels.shape == (1, 30) and labels.dtype == np.float32
    assert inputs[0, 0, 0, 0] == 1.0
    assert inputs[0, 0, 0, 1] == np.float32(51) / np.float32(255)  # 0.2
    assert inputs[0, 0, 95, 95] == np.float32(128) / np.float32(255)
    assert inputs[0, 0, 50, 50] == 0.0
    # (96 - 48) / 48 = 1, (0 - 48) / 48 = -1, (60 - 48) / 48 = 0.25, (36 - 48) / 48 = -0.25
    assert labels[0, :4].tolist() == [1.0, -1.0, 0.25, 0.0]
    assert labels[0, 29] == -0.25
    assert ids == ["0"]
    assert report == {"dropped_rows": 0}


def test_rows_with_missing_values_are_dropped_and_counted(tmp_path: Path) -> None:
    missing_keypoint = ["48"] * 30
    missing_keypoint[7] = ""
    nan_keypoint = ["48"] * 30
    nan_keypoint[3] = "NaN"
    rows = [
        _row(),
        _row(missing_keypoint),
        _row(image=""),
        _row(nan_keypoint),
        _row(["24"] * 30),
    ]
    inputs, labels, ids, report = read_keypoints_csv(_write(tmp_path / "t.csv", HEADER, rows))
    assert report["dropped_rows"] == 3
    assert ids == ["0", "4"]
    assert len(inputs) == 2
    np.testing.assert_array_equal(labels[1], np.full(30, -0.5, dtype=np.float32))


@pytest.mark.parametrize("index_name", ["", "Unnamed: 0"])
def test_pandas_index_column_is_accepted(tmp_path: Path, index_name: str) -> None:
    rows = [[str(i), *_row(["72"] * 30)] for i in (5, 9)]
    path = _write(tmp_path / "val.csv", [index_name, *HEADER], rows)
    inputs, labels, ids, _ = read_keypoints_csv(path)
    assert inputs.shape == (2, 1, 96, 96)
    np.testing.assert_array_equal(labels, np.full((2, 30), 0.5, dtype=np.float32))
    assert ids == ["0", "1"]


def test_byte_order_mark_is_ignored(tmp_path: Path) -> None:
    path = _write(tmp_path / "test.csv", HEADER, [_row()])
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert read_keypoints_csv(path)[2] == ["0"]


def test_columns_are_found_by_name(tmp_path: Path) -> None:
    header = ["Image", *reversed(KEYPOINT_COLUMNS)]
    values = [str(48 + i) for i in range(30)]  # in header order: the reversed columns
    path = _write(tmp_path / "t.csv", header, [[_image(), *values]])
    _, labels, _, _ = read_keypoints_csv(path)
    expected = [(48 + 29 - i - 48) / 48 for i in range(30)]
    np.testing.assert_allclose(labels[0], expected, rtol=0, atol=1e-7)


@pytest.mark.parametrize(
    ("header", "row", "needle"),
    [
        (HEADER[1:], _row()[1:], "header"),
        ([*HEADER, "extra"], [*_row(), "1"], "header"),
        (HEADER, _row(image=_image(count=9215)), "row 0"),
        (HEADER, _row(["48"] * 29 + ["forty"]), "row 0"),
        (HEADER, _row(image=_image({3: 256})), "row 0"),
        (HEADER, _row(image="1 2 x" + " 0" * 9213), "row 0"),
        (HEADER, _row()[:-1], "row 0"),
        (HEADER, _row(["inf"] * 30), "row 0"),
    ],
    ids=[
        "missing-column",
        "extra-column",
        "short-image",
        "non-numeric-keypoint",
        "grey-out-of-range",
        "non-numeric-pixel",
        "missing-field",
        "infinite-keypoint",
    ],
)
def test_malformed_files_name_file_and_row(
    tmp_path: Path, header: list[str], row: list[str], needle: str
) -> None:
    path = _write(tmp_path / "test.csv", header, [row])
    with pytest.raises(DatasetError) as info:
        read_keypoints_csv(path)
    assert str(path) in str(info.value)
    assert needle in str(info.value)


def test_bad_row_is_located_after_good_ones(tmp_path: Path) -> None:
    rows = [_row(), _row(), _row(image=_image(count=10))]
    with pytest.raises(DatasetError, match="row 2 "):
        read_keypoints_csv(_write(tmp_path / "test.csv", HEADER, rows))


def test_no_usable_rows_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no usable rows"):
        read_keypoints_csv(_write(tmp_path / "test.csv", HEADER, [_row(image="")]))


def test_data_files_requires_test_csv(tmp_path: Path) -> None:
    kind = get_kind("keypoints")
    with pytest.raises(DatasetError, match=r"test\.csv"):
        kind.data_files(tmp_path)
    _write(tmp_path / "test.csv", HEADER, [_row()])
    assert kind.data_files(tmp_path) == ["test.csv"]


def test_writer_round_trip(tmp_path: Path) -> None:
    images, points = render_faces(4, seed=3)
    write_keypoints_csv(tmp_path / "test.csv", images, points)
    dataset = get_kind("keypoints").read(tmp_path, "hash")
    assert dataset.task == "keypoints" and dataset.dataset_hash == "hash"
    np.testing.assert_array_equal(dataset.inputs[:, 0], images.astype(np.float32) / 255)
    # Three decimals in the file: at most 0.0005 px, i.e. 1.1e-5 after normalising.
    np.testing.assert_allclose(dataset.labels, (points - 48) / 48, rtol=0, atol=2e-5)


def test_writer_rejects_wrong_shapes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="uint8"):
        write_keypoints_csv(tmp_path / "t.csv", np.zeros((1, 96, 96)), np.zeros((1, 30)))
    with pytest.raises(ValueError, match="keypoints"):
        write_keypoints_csv(tmp_path / "t.csv", np.zeros((2, 96, 96), np.uint8), np.zeros((1, 30)))
