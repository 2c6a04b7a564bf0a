"""The MSRC-v2 reader: centre crop identical to torchvision, colour table, errors."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms

from eval_data import DatasetError, get_kind
from eval_data.kinds.segmentation import (
    LABEL_COLOURS,
    center_crop,
    colours_to_labels,
    read_msrc,
    write_msrc,
)

RGB = {name: rgb for _, name, rgb in LABEL_COLOURS}


def _noise_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("size", [(213, 320), (320, 213), (241, 99), (240, 240), (500, 301)])
def test_center_crop_matches_torchvision(size: tuple[int, int]) -> None:
    h, w = size
    array = _noise_image(h, w)
    expected = np.asarray(transforms.CenterCrop(240)(Image.fromarray(array)))
    got = center_crop(array)
    assert got.shape == (240, 240, 3)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("size", [(213, 320), (320, 213)])
def test_reader_inputs_match_the_course_transform(tmp_path: Path, size: tuple[int, int]) -> None:
    image = _noise_image(*size, seed=1)
    target = np.zeros((*size, 3), dtype=np.uint8)
    target[:] = RGB["grass"]
    write_msrc(tmp_path, [image], [target], ["1_1_s"])

    inputs, labels, ids, _ = read_msrc(tmp_path)

    course = transforms.Compose([transforms.CenterCrop(240), transforms.ToTensor()])
    expected = course(Image.open(tmp_path / "images" / "1_1_s.bmp").convert("RGB"))
    assert inputs.dtype == np.float32 and inputs.shape == (1, 3, 240, 240)
    assert torch.equal(torch.from_numpy(inputs[0]), expected)
    assert labels.dtype == np.int64 and ids == ["1_1_s"]
    # The zero padding of the short side is black, hence void; the rest is grass (1).
    pad = (240 - min(size)) // 2
    strip = labels[0, :pad] if size[0] < size[1] else labels[0, :, :pad]
    assert (strip == -1).all()
    assert (labels[0, 120, 120]) == 1
    assert int((labels[0] == 1).sum()) == 240 * min(size)


def test_colour_table_and_unknown_colours(tmp_path: Path) -> None:
    h, w = 213, 320
    target = np.zeros((h, w, 3), dtype=np.uint8)  # void everywhere to start with
    target[20:60, 40:280] = RGB["sky"]
    target[60:100, 40:280] = RGB["road"]
    target[100:110, 100:110] = (1, 2, 3)  # not an MSRC colour: 100 pixels, all inside the crop
    target[110:120, 100:105] = (128, 0, 1)  # another one: 50 pixels
    target[150:160, 0:10] = (9, 9, 9)  # outside the 240-wide crop, so not counted
    target[120:213, 40:280] = RGB["boat"]
    void_only = np.zeros((w, h, 3), dtype=np.uint8)
    images = [_noise_image(h, w), _noise_image(w, h)]
    write_msrc(tmp_path, images, [target, void_only], ["a", "b"])

    _, labels, ids, report = read_msrc(tmp_path)

    assert ids == ["a", "b"]
    top = (240 - h) // 2  # 13 rows of padding above; columns 40.. of the image start at 0
    assert labels[0, top + 30, 10] == 6  # sky
    assert labels[0, top + 70, 10] == 18  # road
    assert labels[0, top + 105, 65] == -1  # unknown colour -> void
    assert labels[0, top + 150, 10] == 22  # boat
    assert report["unknown_colour_pixels"] == 150
    assert report["unknown_colours"] == [[1, 2, 3], [128, 0, 1]]
    assert report["void_only_images"] == 1
    assert (labels[1] == -1).all()


def test_every_table_colour_maps_to_its_id() -> None:
    assert len(LABEL_COLOURS) == 24
    assert sorted(i for i, _, _ in LABEL_COLOURS) == list(range(-1, 23))
    assert len({rgb for _, _, rgb in LABEL_COLOURS}) == 24
    strip = np.array([[rgb for _, _, rgb in LABEL_COLOURS]], dtype=np.uint8)
    labels, unknown = colours_to_labels(strip)
    assert labels[0].tolist() == [i for i, _, _ in LABEL_COLOURS]
    assert not unknown.any()


def test_data_files_and_blank_lines(tmp_path: Path) -> None:
    image = _noise_image(213, 320)
    target = np.zeros_like(image)
    write_msrc(tmp_path, [image, image], [target, target], ["7_1_s", "8_2_s"])
    (tmp_path / "test.txt").write_text("7_1_s.bmp\n\n  \n8_2_s.bmp\r\n\n")
    assert get_kind("segmentation").data_files(tmp_path) == [
        "test.txt",
        "images/7_1_s.bmp",
        "images/8_2_s.bmp",
        "targets/7_1_s_GT.bmp",
        "targets/8_2_s_GT.bmp",
    ]
    assert read_msrc(tmp_path)[2] == ["7_1_s", "8_2_s"]


def _one_image_set(root: Path) -> None:
    image = _noise_image(213, 320)
    write_msrc(root, [image], [np.zeros_like(image)], ["1_1_s"])


@pytest.mark.parametrize("missing", ["images/1_1_s.bmp", "targets/1_1_s_GT.bmp", "test.txt"])
def test_missing_files_are_named(tmp_path: Path, missing: str) -> None:
    _one_image_set(tmp_path)
    (tmp_path / missing).unlink()
    with pytest.raises(DatasetError, match=re.escape(str(tmp_path / missing))):
        read_msrc(tmp_path)
    with pytest.raises(DatasetError, match=re.escape(str(tmp_path / missing))):
        get_kind("segmentation").data_files(tmp_path)


def test_unreadable_bmp_is_named(tmp_path: Path) -> None:
    _one_image_set(tmp_path)
    (tmp_path / "targets" / "1_1_s_GT.bmp").write_bytes(b"BM not really a bitmap")
    with pytest.raises(DatasetError, match=r"1_1_s_GT\.bmp is not a readable image"):
        read_msrc(tmp_path)


def test_size_mismatch_is_an_error(tmp_path: Path) -> None:
    write_msrc(tmp_path, [_noise_image(213, 320)], [np.zeros((320, 213, 3), np.uint8)], ["x"])
    with pytest.raises(DatasetError, match=r"x_GT\.bmp is 213x320 but its image is 320x213"):
        read_msrc(tmp_path)


@pytest.mark.parametrize("line", ["1_1_s.png", "../1_1_s.bmp", "sub/1_1_s.bmp"])
def test_bad_names_in_the_list(tmp_path: Path, line: str) -> None:
    _one_image_set(tmp_path)
    (tmp_path / "test.txt").write_text(f"{line}\n")
    with pytest.raises(DatasetError, match="line 1"):
        read_msrc(tmp_path)


def test_repeated_and_empty_lists(tmp_path: Path) -> None:
    _one_image_set(tmp_path)
    (tmp_path / "test.txt").write_text("1_1_s.bmp\n1_1_s.bmp\n")
    with pytest.raises(DatasetError, match="more than once"):
        read_msrc(tmp_path)
    (tmp_path / "test.txt").write_text("\n\n")
    with pytest.raises(DatasetError, match="lists no images"):
        read_msrc(tmp_path)
