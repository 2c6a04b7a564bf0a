"""Model formats end to end: detection by content, round trips through a real child process, and
every way an upload is rejected, each with its code.

Every model file is built in a temporary folder at test time. A ``ProcessRunner`` job costs a
few seconds (the child imports torch), so the round trips and one runtime failure go through a
real child process; the other rejections run the child's own entry point, ``grader.child.serve``,
in this process, over the same frames.
"""

from __future__ import annotations

import io
import pickle
import re
import shutil
import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from grader import formats
from grader.child import serve
from grader.errors import GradingError
from grader.formats.upload import check_upload
from grader.limits import MB, Limits
from grader.protocol import array_header, read_message, write_message
from grader.runners import Job
from grader.runners.process import ProcessRunner

N_INPUTS = 5
BATCH = 2  # batches of 2, 2 and 1: the dynamic batch dimension is exercised, including 1


class TinyKeypoints(nn.Module):
    """A keypoint model small enough to export in a second: 1,214 parameters."""

    def __init__(self, layout: tuple[int, ...] = (30,)) -> None:
        super().__init__()
        self.layout = layout
        self.conv = nn.Conv2d(1, 4, 4, stride=4)  # 96 -> 24
        self.pool = nn.AvgPool2d(8)  # 24 -> 3
        self.drop = nn.Dropout(0.5)
        self.fc = nn.Linear(36, 30)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.pool(torch.relu(self.conv(x))).flatten(1)
        out = torch.tanh(self.fc(self.drop(features)))
        return out.view((-1, *self.layout))


TINY_PARAMS = 4 * 16 + 4 + 36 * 30 + 30


class HalfOutput(TinyKeypoints):
    """Returns 15 values per image: the shape mistake a student makes."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x)[:, :15]


class RaisesOnData(nn.Module):
    """Raises an exception whose message quotes test inputs (which must not reach the student)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total = float(x.sum())
        if total > 0.0:
            raise ValueError("input sum was " + str(total) + ", first " + str(float(x[0, 0, 0, 0])))
        return x.flatten(1)[:, :30]


class NanForMarkedImages(nn.Module):
    """NaN for images whose first pixel is negative, +inf where it is above 1."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x.flatten(1)[:, :30].clone()
        first = x[:, 0, 0, 0].unsqueeze(1)
        out = torch.where(first < 0, torch.full_like(out, float("nan")), out)
        return torch.where(first > 1, torch.full_like(out, float("inf")), out)


def _export_pt2(model: nn.Module, path: Path) -> Path:
    example = torch.rand(BATCH, 1, 96, 96)
    batch = torch.export.Dim("batch")
    program = torch.export.export(model, (example,), dynamic_shapes=({0: batch},))
    torch.export.save(program, path)
    return path


@dataclass(frozen=True)
class Built:
    inputs: np.ndarray
    expected: np.ndarray  # the eval-mode model's (N, 30) output, computed in this process
    pt2: Path
    script: Path  # torch.jit.script, returns (N, 15, 2)
    trace: Path  # torch.jit.trace, returns (N, 1, 1, 30) like the course's dummy model
    onnx: Path
    pt2_training: Path
    pt2_half_output: Path
    script_raises: Path
    script_nan: Path
    state_dict: Path
    plain_pickle: Path
    other_zip: Path
    random_bytes: Path
    empty: Path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    root = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    model = TinyKeypoints().eval()
    state = model.state_dict()
    inputs = np.random.default_rng(1).random((N_INPUTS, 1, 96, 96), dtype=np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(inputs)).numpy()

    def variant(cls: type[TinyKeypoints], layout: tuple[int, ...] = (30,)) -> TinyKeypoints:
        copy = cls(layout)
        copy.load_state_dict(state)
        return copy.eval()

    example = torch.from_numpy(inputs[:BATCH])
    torch.jit.script(variant(TinyKeypoints, (15, 2))).save(str(root / "script.pt"))
    torch.jit.trace(variant(TinyKeypoints, (1, 1, 30)), example).save(str(root / "trace.pt"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the legacy exporter, on purpose
        torch.onnx.export(
            model,
            (example,),
            str(root / "model.onnx"),
            dynamo=False,
            input_names=["images"],
            output_names=["keypoints"],
            dynamic_axes={"images": {0: "batch"}, "keypoints": {0: "batch"}},
        )
    torch.jit.script(RaisesOnData()).save(str(root / "raises.pt"))
    torch.jit.script(NanForMarkedImages()).save(str(root / "nan.pt"))
    torch.save(state, root / "state_dict.pt")
    (root / "plain.pkl").write_bytes(pickle.dumps({"state_dict": {"w": [0.5, 1.5]}}))
    with zipfile.ZipFile(root / "other.zip", "w") as archive:
        archive.writestr("notes/readme.txt", "not a model")
    noise = np.random.default_rng(2).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    (root / "random.bin").write_bytes(b"\x00" + noise)  # never a zip, ONNX or pickle header
    (root / "empty.pt2").write_bytes(b"")
    return Built(
        inputs=inputs,
        expected=expected,
        pt2=_export_pt2(model, root / "model.pt2"),
        script=root / "script.pt",
        trace=root / "trace.pt",
        onnx=root / "model.onnx",
        pt2_training=_export_pt2(variant(TinyKeypoints).train(), root / "training.pt2"),
        pt2_half_output=_export_pt2(variant(HalfOutput), root / "half.pt2"),
        script_raises=root / "raises.pt",
        script_nan=root / "nan.pt",
        state_dict=root / "state_dict.pt",
        plain_pickle=root / "plain.pkl",
        other_zip=root / "other.zip",
        random_bytes=root / "random.bin",
        empty=root / "empty.pt2",
    )


@pytest.fixture
def torch_globals() -> Iterator[None]:
    """The child's loader sets torch-wide switches; put them back after an in-process run."""
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    yield
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)


def _run_in_child(path: Path, inputs: np.ndarray, limits: Limits | None = None) -> np.ndarray:
    fmt = check_upload(path, allowed_formats=formats.DEFAULT_FORMATS, max_bytes=20 * MB)
    job = Job("keypoints", fmt, path.read_bytes(), batch_size=BATCH, limits=limits or Limits())
    prediction = ProcessRunner().predict(job, inputs, 1 << 20)
    assert prediction.params == TINY_PARAMS
    return prediction.predictions


def _serve_in_process(
    path: Path, inputs: np.ndarray, *, max_params: int = 5_000_000, batch_size: int = BATCH
) -> dict[str, object]:
    """Run ``grader.child.serve`` on in-memory pipes; return its final frame's header."""
    fmt = formats.detect_format(path)
    job = Job(
        "keypoints",
        fmt,
        path.read_bytes(),
        batch_size=batch_size,
        limits=Limits(max_params=max_params),
    )
    inp, out = io.BytesIO(), io.BytesIO()
    write_message(inp, job.header(), job.model)
    write_message(inp, {"type": "inputs", **array_header(inputs)}, inputs.tobytes())
    inp.seek(0)
    assert serve(inp, out) == 0
    out.seek(0)
    frames = []
    while True:
        try:
            frames.append(read_message(out, 1 << 30)[0])
        except EOFError:
            break
    assert all(f["type"] == "progress" for f in frames[:-1])
    return frames[-1]


# --- detection by content ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "name", "fmt"),
    [
        ("pt2", "model.onnx", formats.PT2),
        ("pt2", "model", formats.PT2),
        ("onnx", "model.pt2", formats.ONNX),
        ("script", "model.onnx", formats.TORCHSCRIPT),
        ("trace", "model.pt2", formats.TORCHSCRIPT),
    ],
)
def test_it_detects_the_format_by_content_not_by_file_name(
    built: Built, tmp_path: Path, source: str, name: str, fmt: str
) -> None:
    renamed = tmp_path / name
    shutil.copyfile(getattr(built, source), renamed)
    assert formats.detect_format(renamed) == fmt


# --- round trips through a child process -------------------------------------------------------


@pytest.mark.parametrize("source", ["pt2", "script", "trace", "onnx"])
def test_it_predicts_like_the_model_in_process_for_every_format(built: Built, source: str) -> None:
    predictions = _run_in_child(getattr(built, source), built.inputs)
    assert predictions.shape == (N_INPUTS, 30)
    assert predictions.dtype == np.float32
    np.testing.assert_allclose(predictions, built.expected, rtol=0, atol=1e-5)


def test_it_reports_the_type_of_a_runtime_exception_without_echoing_input_values(
    built: Built,
) -> None:
    with pytest.raises(GradingError) as info:
        _run_in_child(built.script_raises, built.inputs)
    error = info.value
    assert error.code == "model_error"
    # Worded by the parent: the built-in class name, nothing the model wrote.
    assert error.message.startswith("your model raised ValueError;")
    assert "input sum" not in error.message
    assert not re.search(r"\d", error.message), error.message
    assert re.search(r"input sum was \d+\.\d+", error.detail)  # staff see the full story


# --- rejections before anything is loaded ------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "code", "words"),
    [
        ("empty", "empty_file", "empty"),
        ("random_bytes", "unknown_format", "not a model file"),
        ("plain_pickle", "legacy_pickle", "pickle"),
        ("state_dict", "state_dict_only", "weights alone"),
        ("other_zip", "unknown_format", "zip"),
    ],
)
def test_it_rejects_files_that_are_not_models_with_a_code(
    built: Built, source: str, code: str, words: str
) -> None:
    with pytest.raises(GradingError) as info:
        check_upload(
            getattr(built, source), allowed_formats=formats.DEFAULT_FORMATS, max_bytes=20 * MB
        )
    assert info.value.code == code
    assert words in info.value.message
    if code in ("state_dict_only", "legacy_pickle", "unknown_format"):
        assert "torch.export" in info.value.message  # says how to make an acceptable file


def test_it_rejects_a_file_over_the_size_limit(built: Built) -> None:
    size = built.pt2.stat().st_size
    with pytest.raises(GradingError) as info:
        check_upload(built.pt2, allowed_formats=formats.DEFAULT_FORMATS, max_bytes=size - 1)
    assert info.value.code == "file_too_large"
    assert "MB" in info.value.message
    assert check_upload(built.pt2, allowed_formats=formats.DEFAULT_FORMATS, max_bytes=size) == "pt2"


def test_it_rejects_a_format_the_challenge_does_not_allow(built: Built) -> None:
    with pytest.raises(GradingError) as info:
        check_upload(built.onnx, allowed_formats=(formats.PT2,), max_bytes=20 * MB)
    assert info.value.code == "format_not_allowed"
    assert "ONNX" in info.value.message
    assert "torch.export program" in info.value.message


# --- rejections by the model process (its entry point, run in this process) --------------------


@pytest.mark.usefixtures("torch_globals")
def test_it_rejects_a_model_with_too_many_parameters(built: Built) -> None:
    frame = _serve_in_process(built.pt2, built.inputs, max_params=TINY_PARAMS)
    assert frame["type"] == "error"
    assert frame["code"] == "too_many_parameters"
    assert f"{TINY_PARAMS:,} parameters" in str(frame["message"])
    assert f"fewer than {TINY_PARAMS:,}" in str(frame["message"])
    assert _serve_in_process(built.pt2, built.inputs, max_params=TINY_PARAMS + 1)["type"] == (
        "result"
    )


@pytest.mark.usefixtures("torch_globals")
def test_it_rejects_a_pt2_exported_in_training_mode(built: Built) -> None:
    frame = _serve_in_process(built.pt2_training, built.inputs)
    assert frame["code"] == "exported_in_training_mode"
    assert "dropout" in str(frame["message"])
    assert "model.eval()" in str(frame["message"])


@pytest.mark.usefixtures("torch_globals")
def test_it_rejects_a_model_with_the_wrong_output_shape(built: Built) -> None:
    frame = _serve_in_process(built.pt2_half_output, built.inputs)
    assert frame["code"] == "output_shape"
    assert str(frame["message"]).startswith("output shape (2, 15) for a batch of 2 images")


@pytest.mark.usefixtures("torch_globals")
def test_it_counts_images_with_nan_or_inf_over_every_batch(built: Built) -> None:
    inputs = np.random.default_rng(3).random((298, 1, 96, 96), dtype=np.float32)
    inputs[np.arange(12) * 24 + 1, 0, 0, 0] = -1.0  # 12 NaN images spread over the batches
    inputs[[5, 100], 0, 0, 0] = 2.0  # 2 infinite ones
    frame = _serve_in_process(built.script_nan, inputs, batch_size=32)
    assert frame["code"] == "output_not_finite"
    assert str(frame["message"]).startswith(
        "your model returned NaN for 12 of 298 images and infinity for 2 of 298 images"
    )
