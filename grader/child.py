"""The model side of a grading job: load one model, predict, send compact predictions back.

This module runs in a separate process (under the sandbox in production) and never sees labels.
It reads a ``job`` frame (settings + model bytes) and an ``inputs`` frame from ``inp``, and
writes ``progress`` frames and one final ``result`` or ``error`` frame to ``out``. Anything the
model prints goes to stderr, which the parent keeps for staff only. Nothing this process writes
reaches a student as text: the model runs here and can forge any frame, so the parent words
the student's message from the frame's code alone (``grader.runners.wording``) and keeps the
``message`` and ``detail`` sent here for the staff log.
"""

from __future__ import annotations

import errno
import os
import re
import sys
import time
import traceback
from collections.abc import Iterator
from typing import IO, Any

import numpy as np

from grader.errors import GradingError, safe_message
from grader.formats import load_model
from grader.kinds import get_kind, nonfinite_message
from grader.protocol import array_from, array_header, read_message, write_message

MAX_JOB_BYTES = 1 << 30


def predict_all(job: dict[str, Any], model: bytes, inputs: np.ndarray) -> Iterator[tuple[str, Any]]:
    """Yield ``("progress", done)`` events, then ``("result", (predictions, params, weights))``
    (``weights``: the fingerprint of the weights read, ``grader.fingerprints``)."""
    kind = get_kind(job["kind"])
    output_params = dict(job.get("params") or {})
    predict, params, weights = load_model(
        job["format"], model, job["device"], int(job["threads"]), kind
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
            compact, nan_here, inf_here = kind.check_batch(raw, len(batch), output_params)
            chunks.append(compact)
            n_nan += nan_here
            n_inf += inf_here
            yield "progress", start + len(batch)
    if n_nan or n_inf:
        raise GradingError(
            "output_not_finite",
            nonfinite_message(n_nan, n_inf, count),
            facts={"nan": n_nan, "inf": n_inf},
        )
    yield "result", (np.concatenate(chunks) if chunks else np.zeros((0,)), params, weights)


_SCRIPTED_RAISE = re.compile(r"^(?:builtins\.)?([A-Z]\w*): (.*)$")


def raised(exc: BaseException) -> str:
    """``"<type>: <safe message>"`` for an exception the model raised (the staff log's gist).

    TorchScript wraps a scripted ``raise ValueError(...)`` in ``torch.jit.Error`` whose first
    line is a generic "operation failed" and whose last line is ``builtins.ValueError: ...``
    (``RuntimeError: ...`` for an ``assert``).
    """
    lines = str(exc).strip().splitlines()
    match = _SCRIPTED_RAISE.match(lines[-1]) if lines else None
    if type(exc).__name__ in ("Error", "JITException") and match:
        return f"{match.group(1)}: {safe_message(Exception(match.group(2)))}"
    return f"{type(exc).__name__}: {safe_message(exc)}"


def raised_class(exc: BaseException) -> str:
    """The class name of the exception the model raised, unwrapped from TorchScript's error.

    Only a hint: the parent shows it solely when it is on its allow-list of built-in classes.
    """
    lines = str(exc).strip().splitlines()
    match = _SCRIPTED_RAISE.match(lines[-1]) if lines else None
    if type(exc).__name__ in ("Error", "JITException") and match:
        return match.group(1)
    return type(exc).__name__


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
                predictions, params, weights = value
                _verdict(
                    out,
                    {
                        "type": "result",
                        "params": params,
                        "weights": weights,
                        "seconds": time.monotonic() - started,
                        **array_header(predictions),
                    },
                    predictions.tobytes(),
                )
        return 0
    except GradingError as exc:
        _verdict(
            out,
            {
                "type": "error",
                "code": exc.code,
                "message": exc.message,
                "detail": exc.detail,
                "facts": exc.facts,
            },
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
        # Student code raised: the traceback is for staff (stderr); the parent words the
        # student's message, showing the class name only if it is a built-in one.
        traceback.print_exc()
        _verdict(
            out,
            {
                "type": "error",
                "code": "model_error",
                "message": f"your model raised {raised(exc)}",
                "exception": raised_class(exc),
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
