"""Running a model in another process: the interface every runner implements.

``Runner.predict`` takes the model bytes and the test inputs (never labels), runs them in a
separate process through the frame protocol of ``grader.protocol`` and returns the compact
predictions, still unvalidated: the caller validates and scores them. ``ProcessRunner`` is a
plain child process (a scrubbed environment and rlimits, but no isolation from the host's files
or network): for a student's own machine only. Grading hosts use ``grader.sandbox``.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import IO, Protocol

import numpy as np

from grader import formats
from grader.errors import GradingError, PlatformError
from grader.limits import Limits
from grader.protocol import (
    ProtocolError,
    array_from,
    array_header,
    read_message,
    write_message,
)

STDERR_KEEP = 64 * 1024

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Job:
    task: str
    format: str
    model: bytes
    device: str = "cpu"
    batch_size: int = 32
    limits: Limits = field(default_factory=Limits)

    def header(self) -> dict[str, object]:
        return {
            "type": "job",
            "task": self.task,
            "format": self.format,
            "device": self.device,
            "batch_size": self.batch_size,
            "threads": self.limits.threads,
            "max_params": self.limits.max_params,
        }


@dataclass(frozen=True)
class Prediction:
    predictions: np.ndarray
    params: int
    seconds: float
    #: the model process's stderr, truncated: staff only, it may echo test inputs
    log: str


class Runner(Protocol):
    #: shown in grading records: "process", "sandbox", ...
    name: str

    def predict(
        self, job: Job, inputs: np.ndarray, max_output_bytes: int, progress: Progress | None = None
    ) -> Prediction: ...


class ModelProcess(Protocol):
    """What ``run_protocol`` needs of a started model process (``subprocess.Popen`` has it)."""

    @property
    def stdin(self) -> IO[bytes] | None: ...

    @property
    def stdout(self) -> IO[bytes] | None: ...

    @property
    def stderr(self) -> IO[bytes] | None: ...

    def wait(self, timeout: float | None = None) -> int: ...


class _TailBuffer:
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
        pass  # the child died early; its exit status tells the story


_SIGNAL_LIMITS: dict[int, str] = {signal.SIGXCPU: "cpu_time", signal.SIGXFSZ: "file_size"}


def limit_error(code: str, limits: Limits, count: int) -> GradingError | None:
    """The student's message for a limit the model ran into, by the code the child reports."""
    messages = {
        "memory": f"your model used more than {limits.memory_bytes / (1 << 30):.1f} GB of memory",
        "cpu_time": f"your model used more than {limits.cpu_seconds} s of CPU time on {count}"
        " images",
        "file_size": f"your model tried to write a file larger than {limits.write_bytes >> 20} MB",
        "disk_full": f"your model wrote more than {limits.tmp_bytes >> 20} MB of temporary files",
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
                "your model made a system call that grading does not allow (network, processes"
                " or debugging)",
            )
        if sig == signal.SIGKILL:
            return GradingError(
                "memory",
                f"your model was killed, most likely for using more than"
                f" {limits.memory_bytes / (1 << 30):.1f} GB of memory",
            )
    return GradingError("model_crashed", "your model's process crashed while loading or predicting")


def run_protocol(
    proc: ModelProcess,
    job: Job,
    inputs: np.ndarray,
    max_output_bytes: int,
    progress: Progress | None,
    kill: Callable[[], None],
) -> Prediction:
    """Drive one job over a started process's pipes, under the job's wall-clock deadline."""
    assert proc.stdin and proc.stdout and proc.stderr
    limits = job.limits
    started = time.monotonic()
    timed_out = threading.Event()

    def on_deadline() -> None:
        timed_out.set()
        kill()

    timer = threading.Timer(limits.wall_seconds, on_deadline)
    timer.start()
    stderr = _TailBuffer(proc.stderr)
    feeder = threading.Thread(target=_feed, args=(proc.stdin, job, inputs), daemon=True)
    feeder.start()
    count = len(inputs)
    try:
        while True:
            try:
                header, payload = read_message(proc.stdout, max_output_bytes)
            except EOFError:
                header, payload = {"type": "eof"}, b""
            except ProtocolError as exc:
                kill()
                raise GradingError(
                    "output_too_large" if "exceeds" in str(exc) else "bad_predictions",
                    "your model's output is larger than the challenge's output shape allows"
                    if "exceeds" in str(exc)
                    else "the grader could not read your model's predictions",
                    str(exc),
                ) from exc
            kind = header.get("type")
            if kind == "progress":
                if progress:
                    progress(int(header.get("done", 0)), count)
                continue
            if kind == "result":
                # The verdict is in: stop the process now rather than wait for its exit (torch's
                # teardown takes about a second); what it wrote to stderr is already in the pipe.
                kill()
                try:
                    predictions = array_from(header, payload)
                except ProtocolError as exc:
                    raise GradingError(
                        "bad_predictions",
                        "the grader could not read your model's predictions",
                        str(exc),
                    ) from exc
                return Prediction(
                    predictions=predictions,
                    params=int(header.get("params", 0)),
                    seconds=time.monotonic() - started,
                    log=stderr.text(),
                )
            if kind == "error":
                kill()
                code = str(header.get("code", "model_error"))
                limit = limit_error(code, limits, count)
                if limit:
                    limit.detail = stderr.text()
                    raise limit
                raise GradingError(
                    code,
                    str(header.get("message", "")),
                    "\n".join(filter(None, [str(header.get("detail", "")), stderr.text()])),
                )
            # End of stream without a verdict: the process died or was killed.
            kill()
            returncode = proc.wait(timeout=10)
            if timed_out.is_set():
                raise GradingError(
                    "timeout",
                    f"your model took longer than {limits.wall_seconds:g} s on {count} images",
                    stderr.text(),
                )
            error = describe_exit(returncode, limits, count)
            error.detail = f"exit status {returncode}\n{stderr.text()}"
            raise error
    finally:
        timer.cancel()
        kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)


def child_rlimits(limits: Limits) -> Callable[[], None]:
    def apply() -> None:
        os.setsid()
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.write_bytes, limits.write_bytes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return apply


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """An environment built from scratch: nothing of the parent's (secrets) is passed on."""
    env = {
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONHASHSEED": "0",
        "OMP_NUM_THREADS": "1",
        "HOME": "/tmp",
    }
    env.update(extra or {})
    return env


class ProcessRunner:
    """A fresh Python process per job: isolation of memory and crashes, not a security boundary.

    The course zip runs the student's own Python code as it loads, so this runner refuses it
    unless ``allow_course_zip`` is set: only a student checking their own zip on their own
    machine should do that. A grading host uses the sandbox, which is why refusing is the
    default even for ``make_runner(sandboxed=False)``.
    """

    name = "process"

    def __init__(self, python: str = sys.executable, *, allow_course_zip: bool = False) -> None:
        self.python = python
        self.allow_course_zip = allow_course_zip

    def command(self) -> Sequence[str]:
        return [self.python, "-m", "grader.child"]

    def predict(
        self, job: Job, inputs: np.ndarray, max_output_bytes: int, progress: Progress | None = None
    ) -> Prediction:
        if job.format == formats.COURSE_ZIP and not self.allow_course_zip:
            raise GradingError(
                "needs_sandbox",
                "the course's submission zip runs your own Python code while loading, so it is"
                " only graded inside the sandbox",
            )
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        try:
            proc = subprocess.Popen(
                self.command(),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=clean_env({"PYTHONPATH": root, "OMP_NUM_THREADS": str(job.limits.threads)}),
                cwd="/",
                preexec_fn=child_rlimits(job.limits),
            )
        except OSError as exc:
            raise PlatformError(
                "runner_unavailable", "could not start the model process", str(exc)
            ) from exc

        def kill() -> None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

        return run_protocol(proc, job, inputs, max_output_bytes, progress, kill)
