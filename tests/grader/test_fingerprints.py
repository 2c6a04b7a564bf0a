"""Copy fingerprints through the real sandbox: the weights fingerprint does not depend on the
format or the tensors' names, and changes with the weights; the prediction fingerprint and the
sketch follow the predictions; band keys put near copies in a shared bucket."""

from __future__ import annotations

import copy
import io
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import eval_data
from eval_data.manifest import write_manifest
from grader.evaluate import Evaluation, evaluate
from grader.fingerprints import (
    band_keys,
    checked_fingerprint,
    sketch_from_bytes,
    tensor_digest,
    weights_fingerprint,
)
from grader.kinds import get_kind
from grader.sandbox import SandboxRunner
from tests.grader import attacks

FORMATS = ("pt2", "torchscript", "onnx")


class Net(nn.Module):
    """A small keypoint model with a batch norm (its buffers are weights too)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 4, stride=4)
        self.norm = nn.BatchNorm2d(4)
        self.pool = nn.AvgPool2d(8)
        self.fc = nn.Linear(36, 30)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.fc(self.pool(torch.relu(self.norm(self.conv(x)))).flatten(1)))


class Renamed(nn.Module):
    """The same layers under other names, declared in another order."""

    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(36, 30)
        self.stem = nn.Conv2d(1, 4, 4, stride=4)
        self.bn = nn.BatchNorm2d(4)
        self.avg = nn.AvgPool2d(8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.head(self.avg(torch.relu(self.bn(self.stem(x)))).flatten(1)))


def _trained() -> Net:
    torch.manual_seed(3)
    model = Net()
    with torch.no_grad():  # batch-norm statistics other than the defaults
        model.norm.running_mean.uniform_(-0.1, 0.1)
        model.norm.running_var.uniform_(0.5, 1.5)
    return model.eval()


def _renamed(model: Net) -> Renamed:
    other = Renamed()
    other.head.load_state_dict(model.fc.state_dict())
    other.stem.load_state_dict(model.conv.state_dict())
    other.bn.load_state_dict(model.norm.state_dict())
    return other.eval()


def _nudged(model: nn.Module) -> nn.Module:
    out = copy.deepcopy(model)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for tensor in out.parameters():
            tensor.mul_(1 + 0.001 * torch.randn(tensor.shape, generator=generator))
    return out


def _save(model: nn.Module, fmt: str, path: Path) -> Path:
    example = torch.rand(2, 1, 96, 96)
    if fmt == "pt2":
        batch = torch.export.Dim("batch")
        program = torch.export.export(model, (example,), dynamic_shapes=({0: batch},))
        torch.export.save(program, path)
    elif fmt == "torchscript":
        torch.jit.save(torch.jit.script(model), str(path))
    else:
        buffer = io.BytesIO()
        # Exported as it is (no constant folding, which would fold the batch norm into the
        # convolution and so change the weights), by the exporter that keeps them.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(
                model,
                (example,),
                buffer,
                input_names=["x"],
                dynamic_axes={"x": {0: "n"}},
                dynamo=False,
                do_constant_folding=False,
            )
        path.write_bytes(buffer.getvalue())
    return path


@pytest.fixture(scope="module")
def runner() -> SandboxRunner:
    return attacks.shared_runner()


@pytest.fixture(scope="module")
def hidden(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("hidden")
    eval_data.get_kind("keypoints").synth(folder, 40, 5)
    write_manifest(folder, "keypoints")
    return folder


@pytest.fixture(scope="module")
def graded(
    tmp_path_factory: pytest.TempPathFactory, runner: SandboxRunner, hidden: Path
) -> dict[str, Evaluation]:
    root = tmp_path_factory.mktemp("models")
    model = _trained()
    files = {fmt: _save(model, fmt, root / f"model.{fmt}") for fmt in FORMATS}
    files["renamed"] = _save(_renamed(model), "pt2", root / "renamed.pt2")
    files["nudged"] = _save(_nudged(model), "pt2", root / "nudged.pt2")
    torch.manual_seed(11)
    files["other"] = _save(Net().eval(), "pt2", root / "other.pt2")
    return {
        name: evaluate(path, "keypoints", hidden, runner, allowed_formats=FORMATS)
        for name, path in files.items()
    }


@pytest.mark.slow
def test_it_gives_the_same_weights_the_same_fingerprint_in_every_format(
    graded: dict[str, Evaluation],
) -> None:
    prints = {name: result.weights_fingerprint for name, result in graded.items()}
    assert len(prints["pt2"]) == 64
    assert prints["torchscript"] == prints["pt2"]
    assert prints["onnx"] == prints["pt2"]
    assert prints["renamed"] == prints["pt2"]
    assert prints["nudged"] != prints["pt2"]
    assert prints["other"] != prints["pt2"]


@pytest.mark.slow
def test_it_fingerprints_predictions_in_the_parent(graded: dict[str, Evaluation]) -> None:
    kind = get_kind("keypoints")
    base = graded["pt2"]
    assert graded["renamed"].predictions_fingerprint == base.predictions_fingerprint
    assert graded["other"].predictions_fingerprint != base.predictions_fingerprint
    sketch = sketch_from_bytes(kind, base.predictions_sketch)
    # 32 of the 40 hidden images, 30 values each.
    assert sketch.shape == (32 * 30,)
    nudged = sketch_from_bytes(kind, graded["nudged"].predictions_sketch)
    other = sketch_from_bytes(kind, graded["other"].predictions_sketch)
    assert kind.copy_similarity(sketch, nudged) >= kind.near_threshold
    assert kind.copy_similarity(sketch, other) < kind.near_threshold
    keys = set(band_keys(kind, sketch, kind.near_threshold))
    assert keys & set(band_keys(kind, nudged, kind.near_threshold))
    # Nothing of it reaches the result's figures (a student's page and the API show those).
    shown = str(base.to_json())
    assert base.weights_fingerprint not in shown
    assert base.predictions_fingerprint not in shown


def test_it_ignores_names_and_order_but_not_shapes_or_dtypes() -> None:
    a = tensor_digest("float32", (2, 3), b"x" * 24)
    b = tensor_digest("float32", (3, 2), b"x" * 24)
    c = tensor_digest("float64", (3,), b"x" * 24)
    assert weights_fingerprint([a, b, c]) == weights_fingerprint([c, a, b])
    assert weights_fingerprint([a, a, c]) != weights_fingerprint([a, b, c])
    assert weights_fingerprint([]) == ""


def test_it_keeps_only_a_well_formed_fingerprint_from_the_model_process() -> None:
    good = "ab" * 32
    assert checked_fingerprint(good) == good
    assert checked_fingerprint(good.upper()) == ""
    assert checked_fingerprint("<script>" + good) == ""
    assert checked_fingerprint(123) == ""


def test_it_buckets_label_sketches_by_agreement() -> None:
    kind = get_kind("classification")
    rng = np.random.default_rng(0)
    base = rng.integers(0, 10, kind.sketch_size).astype(kind.sketch_dtype)
    near = base.copy()
    flip = rng.choice(len(base), size=len(base) // 100, replace=False)  # 99 % equal
    near[flip] = (near[flip] + 1) % 10
    other = rng.integers(0, 10, kind.sketch_size).astype(kind.sketch_dtype)
    keys = set(band_keys(kind, base, kind.near_threshold))
    assert len(keys) == 16
    assert keys & set(band_keys(kind, near, kind.near_threshold))
    assert not keys & set(band_keys(kind, other, kind.near_threshold))
    assert kind.copy_similarity(base, near) == pytest.approx(0.99, abs=0.002)
    assert kind.copy_similarity(base, other) < 0.2
