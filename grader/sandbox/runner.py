"""``SandboxRunner``: the trusted parent's side of the sandbox.

One long-lived zygote per runner (``grader.sandbox.zygote``, started under bubblewrap by
``grader.sandbox.bwrap``), restarted if it dies. Per job the parent makes three pipes, hands the
model's ends to the zygote as SCM_RIGHTS on the control socket, and drives the job over its own
ends with ``run_protocol``, exactly as ``ProcessRunner`` does: bounded reads, the wall-clock
deadline and the mapping of deaths to student messages stay in one place. The job's exit status
comes back from the zygote. If the sandbox itself fails (set-up of a job, or the zygote dying)
the job ends in ``PlatformError``, which is retried, never in a verdict on the student.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
from typing import IO, Any

import numpy as np

from grader.errors import GradingError, PlatformError
from grader.runners import Job, Prediction, Progress
from grader.runners.drive import TailBuffer, run_protocol
from grader.sandbox import bwrap, channel
from grader.sandbox.job import NOBODY, checked_uid

UNAVAILABLE = "grading is not available on this host"
_ids = itertools.count(1)


class _JobProcess:
    """One job inside the zygote, shaped like the ``subprocess.Popen`` that ``run_protocol``
    drives: the parent's ends of the job's pipes, and an exit status the zygote reports."""

    def __init__(self, zygote: _Zygote, job_id: str, job: Job, pipes: list[IO[bytes]]) -> None:
        self._zygote = zygote
        self.id = job_id
        self.stdin, self.stdout, self.stderr = pipes
        self._cpu_seconds = job.limits.cpu_seconds
        self._done = threading.Event()
        self.returncode: int | None = None
        #: why the sandbox (not the model) failed this job, if it did
        self.failure = ""

    def finish(self, outcome: dict[str, Any]) -> None:
        if outcome.get("error"):
            self.failure = str(outcome["error"])
        elif not outcome.get("ready"):
            self.failure = "the job's process could not be locked in (see the zygote's log)"
        code = int(outcome.get("returncode", -signal.SIGKILL))
        if code == -signal.SIGKILL and float(outcome.get("cpu", 0)) >= self._cpu_seconds:
            code = -signal.SIGXCPU  # the hard CPU limit: the model ignored SIGXCPU
        self.returncode = code
        self._done.set()

    def wait(self, timeout: float | None = None) -> int:
        if not self._done.wait(timeout):
            raise subprocess.TimeoutExpired(f"sandbox job {self.id}", timeout or 0)
        assert self.returncode is not None
        return self.returncode

    def kill(self) -> None:
        self._zygote.send({"type": "kill", "job": self.id})

    def close(self) -> None:
        for pipe in (self.stdin, self.stdout, self.stderr):
            with contextlib.suppress(OSError, ValueError):
                pipe.close()


class _Zygote:
    """A running zygote: the bwrap process, the control socket, and a thread reading replies."""

    def __init__(
        self, bwrap_path: str, layout: bwrap.Layout, gpu: int | None, timeout: float, uid: int
    ) -> None:
        #: the one GPU its jobs can open, or None (CPU only)
        self.gpu = gpu
        self._sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        command = bwrap.command(bwrap_path, layout, theirs.fileno(), gpu=gpu, uid=uid)
        try:
            self.proc = subprocess.Popen(
                command,
                env={},  # bwrap's own environment (pid 1's /proc/1/environ inside) stays empty
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                pass_fds=[theirs.fileno()],
                start_new_session=True,
                cwd="/",
            )
        except OSError as exc:
            self._sock.close()
            raise PlatformError("sandbox_unavailable", UNAVAILABLE, f"{command[0]}: {exc}") from exc
        finally:
            theirs.close()
        assert self.proc.stdout is not None
        self.log = TailBuffer(self.proc.stdout)
        self._lock = threading.Lock()
        self._jobs: dict[str, _JobProcess] = {}
        self._stats: queue.Queue[dict[str, Any]] = queue.Queue()
        self.alive = True
        self.pid = self._await_ready(timeout)
        threading.Thread(target=self._read, daemon=True, name="sandbox-zygote").start()

    def _await_ready(self, timeout: float) -> int:
        self._sock.settimeout(timeout)
        try:
            message, _ = channel.receive(self._sock)
        except (OSError, ValueError) as exc:
            message = {"type": "error", "stage": "start", "detail": f"no answer: {exc}"}
        self._sock.settimeout(None)
        if message and message.get("type") == "ready":
            return int(message["pid"])
        self.close()
        self.proc.wait()
        log = self.log.text()
        raise PlatformError(
            "sandbox_unavailable", UNAVAILABLE, _diagnose(message, log) + "\n" + log[-4000:]
        )

    def _read(self) -> None:
        while True:
            try:
                message, fds = channel.receive(self._sock)
            except (OSError, ValueError):
                message, fds = None, []
            for fd in fds:
                os.close(fd)
            if message is None:
                break
            if message.get("type") == "exit":
                with self._lock:
                    job = self._jobs.pop(str(message.get("job")), None)
                if job:
                    job.finish(message)
            elif message.get("type") == "stats":
                self._stats.put(message)
        self.alive = False
        with self._lock:
            orphans, self._jobs = list(self._jobs.values()), {}
        for job in orphans:
            job.finish({"error": "the sandbox's zygote stopped during the job"})

    def send(self, message: dict[str, Any], fds: list[int] | None = None) -> bool:
        try:
            with self._lock:
                channel.send(self._sock, message, fds)
            return True
        except OSError:
            return False

    def start(self, job: Job) -> _JobProcess:
        job_id = f"{os.getpid()}-{next(_ids)}"
        stdin_r, stdin_w = os.pipe()
        stdout_r, stdout_w = os.pipe()
        stderr_r, stderr_w = os.pipe()
        pipes: list[IO[bytes]] = [
            os.fdopen(stdin_w, "wb"),
            os.fdopen(stdout_r, "rb"),
            os.fdopen(stderr_r, "rb"),
        ]
        process = _JobProcess(self, job_id, job, pipes)
        limits = job.limits
        spec = {
            "type": "run",
            "job": job_id,
            # The job sees only its own GPU, which is therefore always its cuda:0.
            "device": "cpu" if bwrap.gpu_index(job.device) is None else "cuda:0",
            "memory_bytes": limits.memory_bytes,
            "cpu_seconds": limits.cpu_seconds,
            "wall_seconds": limits.wall_seconds,
            "write_bytes": limits.write_bytes,
            "tmp_bytes": limits.tmp_bytes,
            "open_files": limits.open_files,
            "processes": limits.processes,
        }
        with self._lock:
            self._jobs[job_id] = process
        sent = self.alive and self.send(spec, [stdin_r, stdout_w, stderr_w])
        for fd in (stdin_r, stdout_w, stderr_w):
            os.close(fd)
        if not sent:
            with self._lock:
                self._jobs.pop(job_id, None)
            process.close()
            raise PlatformError(
                "sandbox_failed", "the sandbox stopped; grading will be retried", self.log.peek()
            )
        return process

    def rss(self) -> int:
        """The zygote's resident memory in bytes, as it reads it from its own /proc."""
        if not self.send({"type": "stats"}):
            return 0
        try:
            return int(self._stats.get(timeout=10)["rss"])
        except queue.Empty:
            return 0

    def close(self) -> None:
        # The zygote kills its jobs and exits when the control socket closes; bwrap's
        # --die-with-parent and the kill below cover a zygote that does not.
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def _diagnose(message: dict[str, Any] | None, log: str) -> str:
    """An operator's reason for a zygote that did not start."""
    if message and message.get("type") == "error":
        return f"sandbox self-test failed at {message.get('stage')}: {message.get('detail')}"
    if "namespace" in log or "Operation not permitted" in log:
        return (
            "bwrap could not create the sandbox's namespaces (CAP_SYS_ADMIN, or the container's"
            " seccomp profile forbids unshare/clone/mount)"
        )
    return "the sandbox's zygote exited before it was ready"


def host_problem(bwrap_path: str) -> str:
    """Why this host cannot run the sandbox, or '' if it looks able to (the zygote's start-up
    self-test has the last word)."""
    if not sys.platform.startswith("linux"):
        return "the sandbox needs Linux (namespaces, seccomp)"
    if not (os.path.isfile(bwrap_path) and os.access(bwrap_path, os.X_OK)):
        return f"bubblewrap not found at {bwrap_path} (install the Debian package bubblewrap)"
    if os.geteuid() != 0:
        return (
            "the worker must run as root: jobs are started by root so that they can switch to"
            " a real unprivileged uid"
        )
    try:
        with open("/proc/self/status") as fh:
            seccomp_supported = any(line.startswith("Seccomp:") for line in fh)
        import pyseccomp  # noqa: F401
    except (OSError, RuntimeError, ImportError) as exc:
        return f"seccomp unavailable: {exc}"
    if not seccomp_supported:
        return "seccomp unavailable: the kernel was built without it"
    return ""


class SandboxRunner:
    """Runs each job under bubblewrap as an unprivileged uid with rlimits and seccomp; see the
    package.

    ``uid`` (default 65534, "nobody") is the uid and gid of this runner's jobs. The kernel counts
    the process limit per uid, so runners on one host that grade at the same time (one worker
    per GPU) should each have their own: a fork bomb in one job then never starves another.
    """

    name = "sandbox"

    def __init__(self, bwrap_path: str, *, start_timeout: float = 120.0, uid: int = NOBODY) -> None:
        self.uid = checked_uid(uid)
        self.bwrap = bwrap_path
        self.layout = bwrap.current_layout()
        self.start_timeout = start_timeout
        self._zygote: _Zygote | None = None
        self._lock = threading.Lock()

    @classmethod
    def create(
        cls,
        bwrap: str | None = None,
        *,
        gpu: int | None = None,
        start_timeout: float = 120.0,
        uid: int = NOBODY,
    ) -> SandboxRunner:
        """Start a runner, or raise ``PlatformError("sandbox_unavailable")`` saying why not.

        Fails closed: there is no fallback to an unsandboxed process.
        """
        path = bwrap or shutil.which("bwrap") or "/usr/bin/bwrap"
        problem = host_problem(path)
        if problem:
            raise PlatformError("sandbox_unavailable", UNAVAILABLE, problem)
        runner = cls(path, start_timeout=start_timeout, uid=uid)
        runner._ensure(gpu)
        return runner

    def _ensure(self, gpu: int | None) -> _Zygote:
        """A live zygote whose jobs can open GPU ``gpu`` (any zygote serves CPU jobs)."""
        with self._lock:
            zygote = self._zygote
            if zygote is None or not zygote.alive or (gpu is not None and zygote.gpu != gpu):
                if zygote is not None:
                    zygote.close()
                zygote = self._zygote = _Zygote(
                    self.bwrap, self.layout, gpu, self.start_timeout, self.uid
                )
            return zygote

    def predict(
        self, job: Job, inputs: np.ndarray, max_output_bytes: int, progress: Progress | None = None
    ) -> Prediction:
        zygote = self._ensure(bwrap.gpu_index(job.device))
        process = zygote.start(job)
        try:
            return run_protocol(process, job, inputs, max_output_bytes, progress, process.kill)
        except GradingError as exc:
            if process.failure:
                raise self._failed(process.failure, exc.detail, zygote) from exc
            raise
        except subprocess.TimeoutExpired as exc:  # the zygote never reported the job's end
            raise self._failed("no exit status from the zygote", str(exc), zygote) from exc
        finally:
            process.close()

    @staticmethod
    def _failed(reason: str, detail: str, zygote: _Zygote) -> PlatformError:
        return PlatformError(
            "sandbox_failed",
            "the sandbox failed during grading; grading will be retried",
            f"{reason}\n{detail}\n{zygote.log.peek()[-4000:]}",
        )

    def zygote_rss(self) -> int:
        """Resident memory of the zygote in bytes (0 if none is running)."""
        zygote = self._zygote
        return zygote.rss() if zygote and zygote.alive else 0

    def close(self) -> None:
        with self._lock:
            if self._zygote is not None:
                self._zygote.close()
                self._zygote = None

    def __enter__(self) -> SandboxRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
