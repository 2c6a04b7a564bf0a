"""Driving one job over a started model process's pipes: the same for every runner.

The parent writes the job and the inputs, reads size-bounded frames back under the job's
wall-clock deadline, and turns whatever ended the job (a result, an error frame, a death, the
deadline) into a ``Prediction`` or a ``GradingError`` worded for the student, here in the
parent and never from text the model process sent (``grader.runners.wording``). Keeping it in one
place means the sandbox and the plain process map deaths to messages the same way.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from typing import IO, Any

import numpy as np

from grader.errors import GradingError
from grader.fingerprints import checked_fingerprint
from grader.i18n import gettext_noop
from grader.limits import Limits
from grader.protocol import (
    FrameTooLarge,
    ProtocolError,
    array_from,
    array_header,
    read_message,
    write_message,
)
from grader.runners import Job, ModelProcess, Prediction, Progress
from grader.runners.wording import staff_detail, student_error

STDERR_KEEP = 64 * 1024

_SIGNAL_LIMITS: dict[int, str] = {signal.SIGXCPU: "cpu_time", signal.SIGXFSZ: "file_size"}


class TailBuffer:
    """Keeps the last ``limit`` bytes of a stream (a chatty model cannot fill memory)."""

    def __init__(self, stream: IO[bytes], limit: int = STDERR_KEEP) -> None:
        self._data = bytearray()
        self._limit = limit
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream: IO[bytes]) -> None:
        # read1: whatever has arrived, so that peek() sees a live stream
        read = getattr(stream, "read1", stream.read)
        for chunk in iter(lambda: read(65536), b""):
            self._data += chunk
            if len(self._data) > 2 * self._limit:
                del self._data[: -self._limit]

    def text(self) -> str:
        self._thread.join(timeout=2)
        return self.peek()

    def peek(self) -> str:
        """What arrived so far, without waiting for the stream to end."""
        return bytes(self._data[-self._limit :]).decode(errors="replace")


def _feed(stream: IO[bytes], job: Job, inputs: np.ndarray) -> None:
    try:
        write_message(stream, job.header(), job.model)
        data = np.ascontiguousarray(inputs)
        write_message(stream, {"type": "inputs", **array_header(data)}, data.data.cast("B"))
        stream.close()
    except (BrokenPipeError, OSError, ValueError):
        pass  # the model process died early; its exit status tells the story


def limit_error(code: str, limits: Limits, count: int) -> GradingError | None:
    """The student's message for a limit the model ran into, by the code the child reports."""
    messages = {
        "memory": gettext_noop("your model used more than %(size)s GB of memory")
        % {"size": f"{limits.memory_bytes / (1 << 30):.1f}"},
        "cpu_time": gettext_noop(
            "your model used more than %(seconds)s s of CPU time on %(count)s images"
        )
        % {"seconds": limits.cpu_seconds, "count": count},
        "file_size": gettext_noop("your model tried to write a file larger than %(size)s MB")
        % {"size": limits.write_bytes >> 20},
        "disk_full": gettext_noop("your model wrote more than %(size)s MB of temporary files")
        % {"size": limits.tmp_bytes >> 20},
    }
    return GradingError(code, messages[code]) if code in messages else None


def describe_exit(returncode: int | None, limits: Limits, count: int) -> GradingError:
    """Turn a model process that died without a verdict into a message the student can act on."""
    if returncode is not None and returncode < 0:
        sig = -returncode
        limit = limit_error(_SIGNAL_LIMITS.get(sig, ""), limits, count)
        if limit:
            return limit
        if sig == signal.SIGSYS:
            return GradingError(
                "forbidden_call",
                gettext_noop(
                    "your model made a system call that grading does not allow (network,"
                    " processes or debugging)"
                ),
            )
        if sig == signal.SIGKILL:
            return GradingError(
                "memory",
                gettext_noop(
                    "your model was killed, most likely for using more than %(size)s GB of memory"
                )
                % {"size": f"{limits.memory_bytes / (1 << 30):.1f}"},
            )
    return GradingError(
        "model_crashed", gettext_noop("your model's process crashed while loading or predicting")
    )


class _Deadline:
    """Kills the job when its wall clock runs out, and remembers that it did."""

    def __init__(self, seconds: float, kill: Callable[[], None]) -> None:
        self.expired = threading.Event()
        self._kill = kill
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.start()

    def _fire(self) -> None:
        self.expired.set()
        self._kill()

    def cancel(self) -> None:
        self._timer.cancel()


def _next_frame(proc: ModelProcess, max_output_bytes: int) -> tuple[dict[str, Any], bytes]:
    """The next frame from the model process; ``{"type": "eof"}`` once its stream ended."""
    assert proc.stdout is not None
    try:
        return read_message(proc.stdout, max_output_bytes)
    except EOFError:
        return {"type": "eof"}, b""
    except FrameTooLarge as exc:
        raise GradingError(
            "output_too_large",
            gettext_noop("your model's output is larger than the challenge's output shape allows"),
            str(exc),
        ) from exc
    except ProtocolError as exc:
        raise GradingError(
            "bad_predictions", "the grader could not read your model's predictions", str(exc)
        ) from exc


def _result(
    header: dict[str, Any], payload: bytes, started: float, log: str, job: Job
) -> Prediction:
    try:
        predictions = array_from(header, payload)
    except ProtocolError as exc:
        raise GradingError(
            "bad_predictions", "the grader could not read your model's predictions", str(exc)
        ) from exc
    params = header.get("params", 0)
    if not isinstance(params, int) or not 0 <= params < job.limits.max_params:
        # The count is shown on the result page: a forged one must not carry data out.
        raise GradingError(
            "bad_predictions",
            "the grader could not read your model's predictions",
            f"model process reported {str(params)[:40]!r} parameters",
        )
    return Prediction(
        predictions=predictions,
        params=params,
        seconds=time.monotonic() - started,
        log=log,
        weights=checked_fingerprint(header.get("weights")),
    )


def _error(header: dict[str, Any], job: Job, count: int, log: str) -> GradingError:
    """The student's error for an error frame: worded here, never taken from the frame."""
    code = str(header.get("code", "model_error"))
    error = limit_error(code, job.limits, count) or student_error(code, header, job, count)
    error.detail = staff_detail(header, log)
    return error


def _death(
    proc: ModelProcess, deadline: _Deadline, limits: Limits, count: int, log: TailBuffer
) -> GradingError:
    """The stream ended without a verdict: the process died, or the deadline killed it."""
    returncode = proc.wait(timeout=10)
    if deadline.expired.is_set():
        return GradingError(
            "timeout",
            gettext_noop("your model took longer than %(seconds)s s on %(count)s images")
            % {"seconds": f"{limits.wall_seconds:g}", "count": count},
            log.text(),
        )
    error = describe_exit(returncode, limits, count)
    error.detail = f"exit status {returncode}\n{log.text()}"
    return error


def run_protocol(
    proc: ModelProcess,
    job: Job,
    inputs: np.ndarray,
    max_output_bytes: int,
    progress: Progress | None,
    kill: Callable[[], None],
) -> Prediction:
    """Drive one job over a started process's pipes, under the job's wall-clock deadline."""
    assert proc.stdin and proc.stderr
    started = time.monotonic()
    deadline = _Deadline(job.limits.wall_seconds, kill)
    stderr = TailBuffer(proc.stderr)
    threading.Thread(target=_feed, args=(proc.stdin, job, inputs), daemon=True).start()
    count = len(inputs)
    try:
        while True:
            try:
                header, payload = _next_frame(proc, max_output_bytes)
            except GradingError:
                kill()
                raise
            kind = header.get("type")
            if kind == "progress":
                if progress:
                    progress(int(header.get("done", 0)), count)
                continue
            # The verdict is in (or the stream ended): stop the process now rather than wait
            # for its exit (torch's teardown takes about a second); its stderr is in the pipe.
            kill()
            if kind == "result":
                return _result(header, payload, started, stderr.text(), job)
            if kind == "error":
                raise _error(header, job, count, stderr.text())
            raise _death(proc, deadline, job.limits, count, stderr)
    finally:
        deadline.cancel()
        kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
