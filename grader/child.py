"""The model side of a grading job: load one model, predict, send compact predictions back.

This module runs in a separate process (under the sandbox in production) and never sees labels.
It reads a ``job`` frame (settings + model bytes) and an ``inputs`` frame from ``inp``, and
writes ``progress`` frames and one final ``result`` or ``error`` frame to ``out``. Anything the
model prints goes to stderr, which the parent keeps for staff only.
"""

from __future__ import annotations

import errno
import io
import os
import re
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from typing import IO, Any

import numpy as np

from grader import formats
from grader.errors import GradingError
from grader.protocol import array_from, array_header, read_message, write_message
from grader.tasks import get_task, nonfinite_message

MAX_JOB_BYTES = 1 << 30

Predict = Callable[[np.ndarray], np.ndarray]


def _training_mode_ops(graph: Any) -> list[str]:
    """Names of ops in an exported graph that only appear when exported in training mode."""
    import torch

    aten = torch.ops.aten
    found = []
    for node in graph.nodes:
        if node.op != "call_function":
            continue
        if node.target in (aten.dropout.default, aten.native_dropout.default):
            train = node.args[2] if len(node.args) > 2 else node.kwargs.get("train", False)
            if train:
                found.append("dropout")
        elif node.target == aten._native_batch_norm_legit_functional.default:
            found.append("batch_norm")
    return found


def _load_pt2(data: bytes, device: str) -> tuple[Predict, int]:
    import torch

    try:
        program = torch.export.load(io.BytesIO(data))
    except Exception as exc:
        raise GradingError(
            "invalid_model", f"this is not a valid .pt2 archive: {safe_message(exc)}"
        ) from exc
    training = _training_mode_ops(program.graph)
    if training:
        raise GradingError(
            "exported_in_training_mode",
            f"your .pt2 was exported in training mode ({', '.join(sorted(set(training)))} in"
            " training form); call model.eval() before torch.export.export",
        )
    if device != "cpu":
        from torch.export.passes import move_to_device_pass

        program = move_to_device_pass(program, device)
    params = sum(int(p.numel()) for p in program.parameters())
    module = program.module()

    def predict(batch: np.ndarray) -> np.ndarray:
        return _as_array(module(torch.from_numpy(batch).to(device)))

    return predict, params


def _load_torchscript(data: bytes, device: str) -> tuple[Predict, int]:
    import torch

    try:
        module = torch.jit.load(io.BytesIO(data), map_location=device)
    except Exception as exc:
        raise GradingError(
            "invalid_model", f"this is not a valid TorchScript file: {safe_message(exc)}"
        ) from exc
    module.eval()
    params = sum(int(p.numel()) for p in module.parameters())

    def predict(batch: np.ndarray) -> np.ndarray:
        return _as_array(module(torch.from_numpy(batch).to(device)))

    return predict, params


def _load_onnx(data: bytes, device: str, threads: int) -> tuple[Predict, int]:
    import onnx
    import onnxruntime as ort

    model = onnx.load_from_string(data)
    params = sum(int(np.prod(t.dims, dtype=np.int64)) for t in model.graph.initializer)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    providers = ["CPUExecutionProvider"]
    if device.startswith("cuda"):
        index = device.partition(":")[2] or "0"
        providers.insert(0, ("CUDAExecutionProvider", {"device_id": int(index)}))  # type: ignore[arg-type]
    try:
        session = ort.InferenceSession(data, options, providers=providers)
    except Exception as exc:
        raise GradingError(
            "invalid_model", f"onnxruntime cannot load this model: {safe_message(exc)}"
        ) from exc
    if len(session.get_inputs()) != 1:
        raise GradingError(
            "model_inputs", "the ONNX model must take exactly one input (the image batch)"
        )
    name = session.get_inputs()[0].name

    def predict(batch: np.ndarray) -> np.ndarray:
        return np.asarray(session.run(None, {name: batch})[0])

    return predict, params


def _as_array(output: Any) -> np.ndarray:
    import torch

    if isinstance(output, (tuple, list)) and len(output) == 1:
        output = output[0]
    if not isinstance(output, torch.Tensor):
        raise GradingError(
            "output_type",
            f"your model returned a {type(output).__name__}, but the challenge needs a single"
            " tensor",
        )
    return output.detach().float().cpu().numpy()


def load_model(fmt: str, data: bytes, device: str, threads: int, task: str) -> tuple[Predict, int]:
    """Load model bytes of a known format; return a batch predictor and its parameter count.

    ``task`` matters only to the course zip, whose state-dict form is rebuilt with the
    student's class for that task.
    """
    if fmt in (formats.PT2, formats.TORCHSCRIPT, formats.COURSE_ZIP):
        import torch

        torch.set_num_threads(threads)
        torch.manual_seed(0)
        torch.use_deterministic_algorithms(True, warn_only=True)
    if fmt == formats.PT2:
        return _load_pt2(data, device)
    if fmt == formats.TORCHSCRIPT:
        return _load_torchscript(data, device)
    if fmt == formats.ONNX:
        return _load_onnx(data, device, threads)
    if fmt == formats.COURSE_ZIP:
        from grader.course_zip import load_course_zip

        return load_course_zip(data, device, threads, task)
    raise GradingError("unknown_format", f"the grader cannot run {fmt!r} models")


def predict_all(job: dict[str, Any], model: bytes, inputs: np.ndarray) -> Iterator[tuple[str, Any]]:
    """Yield ``("progress", done)`` events, then ``("result", (predictions, params))``."""
    task = get_task(job["task"])
    predict, params = load_model(
        job["format"], model, job["device"], int(job["threads"]), job["task"]
    )
    max_params = int(job["max_params"])
    if params >= max_params:
        raise GradingError(
            "too_many_parameters",
            f"your model has {params:,} parameters; this challenge allows fewer than"
            f" {max_params:,}",
        )
    import torch

    count = len(inputs)
    batch_size = max(1, int(job["batch_size"]))
    chunks = []
    n_nan = n_inf = 0
    with torch.inference_mode():
        for start in range(0, count, batch_size):
            batch = np.array(inputs[start : start + batch_size])  # writable copy for torch
            raw = predict(batch)
            compact, nan_here, inf_here = task.check_batch(raw, len(batch))
            chunks.append(compact)
            n_nan += nan_here
            n_inf += inf_here
            yield "progress", start + len(batch)
    if n_nan or n_inf:
        raise GradingError("output_not_finite", nonfinite_message(n_nan, n_inf, count))
    yield "result", (np.concatenate(chunks) if chunks else np.zeros((0,)), params)


def safe_message(exc: BaseException) -> str:
    """The first line of an exception's message, with numbers that could carry data removed.

    A framework error ("mat1 and mat2 shapes cannot be multiplied (4x10368 and 1296x256)") is
    what a student needs to fix their model; a message built from test inputs must not reach
    them, so decimals are dropped and a message with many numbers keeps only its words.
    """
    lines = str(exc).strip().splitlines()
    text = re.sub(r"-?\d*\.\d+([eE][-+]?\d+)?|-?\d+[eE][-+]?\d+", "…", lines[0] if lines else "")
    if len(re.findall(r"\d+", text)) > 8:
        text = re.sub(r"\d+", "…", text)
    return text[:200] or "(no message)"


_SCRIPTED_RAISE = re.compile(r"^(?:builtins\.)?([A-Z]\w*): (.*)$")


def raised(exc: BaseException) -> str:
    """``"<type>: <safe message>"`` for an exception the model raised.

    TorchScript wraps a scripted ``raise ValueError(...)`` in ``torch.jit.Error`` whose first
    line is a generic "operation failed" and whose last line is ``builtins.ValueError: ...``
    (``RuntimeError: ...`` for an ``assert``): the student hears of their own exception.
    """
    lines = str(exc).strip().splitlines()
    match = _SCRIPTED_RAISE.match(lines[-1]) if lines else None
    if type(exc).__name__ in ("Error", "JITException") and match:
        return f"{match.group(1)}: {safe_message(Exception(match.group(2)))}"
    return f"{type(exc).__name__}: {safe_message(exc)}"


def resource_code(exc: BaseException) -> str:
    """The limit an exception shows the model ran into, or ''.

    Under rlimits an allocation fails rather than the process being killed, and a write past
    the file size limit fails with EFBIG (Python ignores SIGXFSZ).
    """
    if isinstance(exc, OSError) and exc.errno == errno.EFBIG:
        return "file_size"
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return "disk_full"
    if isinstance(exc, RuntimeError) and "can't allocate memory" in str(exc):
        return "memory"  # torch's CPU allocator
    return ""


def _verdict(out: IO[bytes], header: dict[str, Any], payload: bytes = b"") -> None:
    """Send the final frame, after flushing stderr: the parent stops the process on receipt."""
    sys.stderr.flush()
    write_message(out, header, payload)


def serve(inp: IO[bytes], out: IO[bytes]) -> int:
    """Run one job from ``inp`` and report on ``out``; return the process exit code."""
    try:
        job, model = read_message(inp, MAX_JOB_BYTES)
        header, payload = read_message(inp, MAX_JOB_BYTES)
        inputs = array_from(header, payload)
        started = time.monotonic()
        for kind, value in predict_all(job, model, inputs):
            if kind == "progress":
                write_message(out, {"type": "progress", "done": value, "total": len(inputs)})
            else:
                predictions, params = value
                _verdict(
                    out,
                    {
                        "type": "result",
                        "params": params,
                        "seconds": time.monotonic() - started,
                        **array_header(predictions),
                    },
                    predictions.tobytes(),
                )
        return 0
    except GradingError as exc:
        _verdict(
            out, {"type": "error", "code": exc.code, "message": exc.message, "detail": exc.detail}
        )
        return 0
    except MemoryError:
        _verdict(out, {"type": "error", "code": "memory", "message": "", "detail": ""})
        return 0
    except Exception as exc:
        code = resource_code(exc)
        if code:
            # The parent words these: it knows which limit was hit.
            traceback.print_exc()
            _verdict(out, {"type": "error", "code": code, "message": "", "detail": ""})
            return 0
        # Student code raised: the traceback is for staff (stderr), the gist for the student.
        traceback.print_exc()
        _verdict(
            out,
            {
                "type": "error",
                "code": "model_error",
                "message": f"your model raised {raised(exc)}",
                "detail": traceback.format_exc()[-4000:],
            },
        )
        return 0


def main() -> int:
    # Keep the protocol stream for ourselves: whatever the model prints lands on stderr.
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return serve(sys.stdin.buffer, out)


if __name__ == "__main__":
    raise SystemExit(main())
