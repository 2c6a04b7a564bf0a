"""The zygote: runs inside bubblewrap, imports the runtime once, forks one process tree per job.

``python -m grader.sandbox.zygote FD``, started by ``grader.sandbox.runner`` with the control
socket as FD. It imports torch and onnxruntime and loads one tiny model of each format (so a job
pays neither the imports nor the first-call set-up), proves it can build a job, says ``ready``
and then serves ``run`` / ``kill`` / ``stats`` requests. The zygote never reads job data: model
bytes and inputs travel on pipes straight from the parent to the job's model process.

Per job it forks a *leader* (``grader.sandbox.job``), which builds the job's namespaces and
processes and reports back on a pipe. The zygote only ever signals a job through a pidfd of the
job's init, so a kill can never hit a reused pid.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import select
import signal
import socket
import sys
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

from grader.sandbox import channel
from grader.sandbox.job import NOBODY, proc_status
from grader.sandbox.job import leader as run_leader

#: a stuck job is killed this long after its own wall-clock deadline, whatever the parent does
DEADLINE_GRACE = 10.0
REPORT_MAX = 4096


# --- the zygote itself --------------------------------------------------------------------


@dataclass
class _Job:
    id: str
    leader: int
    report: int
    deadline: float
    #: a pidfd of the job's init, once the leader has named it
    init: int | None = None
    #: a kill was asked for / has been sent
    killed: bool = False
    init_killed: bool = False
    buffer: bytes = b""
    outcome: dict[str, Any] = field(default_factory=dict)


class Zygote:
    def __init__(self, control: socket.socket, uid: int = NOBODY) -> None:
        self.control = control
        #: every job of this zygote runs as this uid (and gid): its own process budget
        self.uid = uid
        self.jobs: dict[int, _Job] = {}  # by the read end of the leader's report pipe

    def spawn(self, spec: dict[str, Any], fds: list[int]) -> _Job:
        spec = {**spec, "uid": self.uid}  # set here, never taken from the parent's message
        sys.stdout.flush()
        sys.stderr.flush()
        pipe: tuple[int, ...] = ()
        try:
            pipe = os.pipe()
            leader = os.fork()
        except OSError:
            for fd in (*fds, *pipe):
                os.close(fd)
            raise
        report_r, report_w = pipe
        if leader == 0:
            self.control.close()
            os.close(report_r)
            run_leader(spec, fds, report_w)
        os.close(report_w)
        for fd in fds:
            os.close(fd)
        deadline = time.monotonic() + float(spec["wall_seconds"]) + DEADLINE_GRACE
        job = _Job(str(spec.get("job", "")), leader, report_r, deadline)
        self.jobs[report_r] = job
        return job

    def kill(self, job: _Job) -> None:
        # SIGKILL to a job's init from outside its pid namespace ends the whole namespace. A
        # kill that comes before the leader has named the init is carried out when it does.
        job.killed = True
        if job.init is not None and not job.init_killed:
            job.init_killed = True
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(job.init, signal.SIGKILL)

    def on_report(self, job: _Job) -> dict[str, Any] | None:
        """Read what the leader wrote; its outcome once the job is over and the leader reaped."""
        chunk = os.read(job.report, REPORT_MAX)
        job.buffer = (job.buffer + chunk)[-REPORT_MAX:]
        while b"\n" in job.buffer:
            line, job.buffer = job.buffer.split(b"\n", 1)
            message = json.loads(line)
            if "init" in message:
                # The init cannot have been reaped yet: the leader reaps it only after the
                # worker, which has barely started, has exited.
                with contextlib.suppress(ProcessLookupError):
                    job.init = os.pidfd_open(int(message["init"]))
                if job.killed:
                    self.kill(job)
            else:
                job.outcome = message
        if chunk:
            return None
        os.close(job.report)
        if job.init is not None:
            os.close(job.init)
        del self.jobs[job.report]
        _, status = os.waitpid(job.leader, 0)
        return {"job": job.id, **(job.outcome or {"error": f"job leader ended ({status})"})}

    def reply(self, message: dict[str, Any]) -> None:
        with contextlib.suppress(OSError):  # the parent has gone; the next receive says so
            channel.send(self.control, message)

    def on_request(self) -> bool:
        """Handle one control message; False when the parent has gone."""
        message, fds = channel.receive(self.control)
        if message is None:
            return False
        kind = message.get("type")
        if kind == "run" and len(fds) == 3:
            try:
                self.spawn(message, fds)
            except OSError as exc:
                self.reply({"type": "exit", "job": message.get("job"), "error": str(exc)})
            return True
        for fd in fds:
            os.close(fd)
        if kind == "kill":
            for job in list(self.jobs.values()):
                if job.id == message.get("job"):
                    self.kill(job)
        elif kind == "stats":
            self.reply({"type": "stats", "rss": proc_status("VmRSS"), "jobs": len(self.jobs)})
        return True

    def wait(self, timeout: float | None) -> list[Any]:
        now = time.monotonic()
        for job in self.jobs.values():
            if now > job.deadline:
                self.kill(job)
        pending = [j.deadline - now for j in self.jobs.values() if not j.killed]
        soonest = min(pending, default=None)
        if soonest is not None:
            timeout = max(0.1, soonest) if timeout is None else min(timeout, max(0.1, soonest))
        waiting: list[Any] = [self.control, *self.jobs]
        readable, _, _ = select.select(waiting, [], [], timeout)
        return readable

    def serve(self) -> None:
        while True:
            for item in self.wait(None):
                if item is not self.control:
                    outcome = self.on_report(self.jobs[item])
                    if outcome is not None:
                        self.reply({"type": "exit", **outcome})
                elif not self.on_request():
                    for job in list(self.jobs.values()):
                        self.kill(job)
                    return

    def self_test(self) -> str:
        """Run a probe job through the whole set-up; return what went wrong, or ''."""
        spec = {
            "probe": True,
            "job": "probe",
            "device": "cpu",
            "memory_bytes": 1 << 30,
            "cpu_seconds": 10,
            "wall_seconds": 20,
            "write_bytes": 1 << 20,
            "open_files": 64,
            "processes": 16,
            "tmp_bytes": 1 << 20,
        }
        job = self.spawn(spec, [os.open("/dev/null", os.O_RDONLY), os.dup(2), os.dup(2)])
        outcome = None
        while outcome is None:
            if job.report in self.wait(5.0):
                outcome = self.on_report(job)
        if outcome.get("error"):
            return f"could not build a job's namespaces and mounts: {outcome['error']}"
        if not outcome.get("ready"):
            return "a job could not drop privileges or load its seccomp filter (see the log)"
        if outcome.get("returncode") != 0:
            return "a job's self-test failed (see the log)"
        return ""


def cuda_touched() -> bool:
    """Whether this process has initialised CUDA. The zygote must not: a CUDA context does not
    survive fork, so a job forked after it would fail on its GPU. Each job on a GPU initialises
    CUDA itself, in its own process, after the fork. (``is_initialized`` reads torch's own
    flag; it does not itself touch the driver, unlike ``is_available`` or ``device_count``.)"""
    torch = sys.modules.get("torch")
    return bool(torch is not None and torch.cuda.is_initialized())


def warm_up() -> None:
    """Import and exercise everything a job uses, so each fork starts warm; CPU only: nothing
    here may ask torch about CUDA (``cuda_touched``)."""
    import numpy as np
    import torch
    from onnx import TensorProto, helper

    from grader import child, formats, kinds
    from grader.formats import course_zip, onnx, pt2, torchscript

    del child, course_zip, onnx, pt2, torchscript  # imported so that each job starts warm
    # Before any op: libgomp deadlocks in a forked child whose parent ran a threaded op.
    torch.set_num_threads(1)
    torch.backends.cpu.get_cpu_capability()
    kind = kinds.get_kind(kinds.kind_names()[0])
    tiny = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2)).eval()
    example = torch.zeros(2, 1, 2, 2)
    buffer = io.BytesIO()
    batch = torch.export.Dim("batch")
    program = torch.export.export(tiny, (example,), dynamic_shapes=({0: batch},))
    torch.export.save(program, buffer)
    samples = np.zeros((2, 1, 2, 2), dtype=np.float32)
    predict = formats.load_model(formats.PT2, buffer.getvalue(), "cpu", 1, kind).predict
    predict(samples)
    buffer = io.BytesIO()
    torch.jit.save(torch.jit.script(tiny), buffer)
    predict = formats.load_model(formats.TORCHSCRIPT, buffer.getvalue(), "cpu", 1, kind).predict
    predict(samples)
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "warm",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 1, 2, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 1, 2, 2])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    predict = formats.load_model(formats.ONNX, model.SerializeToString(), "cpu", 1, kind).predict
    predict(samples)


def main(argv: list[str]) -> int:
    control = socket.socket(fileno=int(argv[1]))
    uid = int(argv[2]) if len(argv) > 2 else NOBODY
    stage = "warm_up"
    try:
        warm_up()
        if cuda_touched():
            raise RuntimeError("the zygote initialised CUDA: forked GPU jobs would fail")
        stage = "self_test"
        problem = Zygote(control, uid).self_test()
    except BaseException:
        traceback.print_exc()
        problem = traceback.format_exc(limit=4)[-2000:]
    if problem:
        channel.send(control, {"type": "error", "stage": stage, "detail": problem})
        return 1
    channel.send(control, {"type": "ready", "pid": os.getpid(), "rss": proc_status("VmRSS")})
    Zygote(control, uid).serve()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
