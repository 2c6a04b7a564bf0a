"""The sandbox with well-behaved models: same answers as a plain process, every isolation claim
checked from inside a job, jobs isolated from each other, and no sandbox means no grading."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from grader import formats
from grader.errors import GradingError, PlatformError
from grader.evaluate import evaluate
from grader.formats.upload import prepare_upload
from grader.limits import MB, Limits
from grader.runners import Job, clean_env
from grader.runners.process import ProcessRunner
from grader.sandbox import SandboxRunner
from grader.sandbox.bwrap import ZYGOTE_CUDA_ENV, current_layout, inside
from tests.grader import attacks

pytestmark = pytest.mark.sandbox

INPUTS = attacks.random_inputs(5)
BOUND = 1 << 20

COURSE_SOURCE = """
import torch
from torch import nn


class KeypointModel(nn.Module):
    def __init__(self, hparams):
        super().__init__()
        self.hparams = hparams
        width = hparams["width"]
        self.conv = nn.Conv2d(1, width, 4, stride=4)
        self.pool = nn.MaxPool2d(8)
        self.fc = nn.Linear(9 * width, 30)

    def forward(self, x):
        return self.fc(self.pool(torch.relu(self.conv(x))).flatten(1))
"""


@pytest.fixture(scope="module")
def runner() -> SandboxRunner:
    return attacks.shared_runner()


def _course_zip(root: Path, pickled_module: bool) -> Path:
    """A benign course submission, saved the two ways the course's notebooks save it."""
    package = root / f"src-{pickled_module}"
    (package / "exercise_code" / "networks").mkdir(parents=True)
    (package / "exercise_code" / "__init__.py").write_text("")
    (package / "exercise_code" / "networks" / "__init__.py").write_text("")
    (package / "exercise_code" / "networks" / "keypoint_nn.py").write_text(COURSE_SOURCE)
    sys.path.insert(0, str(package))
    try:
        from exercise_code.networks.keypoint_nn import KeypointModel

        torch.manual_seed(3)
        model = KeypointModel({"width": 4})
        buffer = io.BytesIO()
        if pickled_module:
            torch.save(model, buffer)
            name = "models/keypoints.model"
        else:
            torch.save({"state_dict": model.state_dict(), "hparams": {"width": 4}}, buffer)
            name = "models/facial_keypoints.p"
    finally:
        sys.path.remove(str(package))
        for module in [m for m in sys.modules if m.startswith("exercise_code")]:
            del sys.modules[module]
    members = {str(p.relative_to(package)): p.read_bytes() for p in package.rglob("*.py")} | {
        name: buffer.getvalue(),
        "notebook.ipynb": b"{}",
    }
    return attacks.write_zip(root / f"course-{pickled_module}.zip", members)


def _model_file(kind: str, root: Path) -> Path:
    torch.manual_seed(0)
    model = attacks.TinyKeypoints()
    if kind == "pt2":
        return attacks.export_pt2(model, root / "m.pt2")
    if kind == "torchscript":
        return attacks.export_torchscript(model, root / "m.pt")
    if kind == "onnx":
        return attacks.export_onnx(model, root / "m.onnx")
    return _course_zip(root, pickled_module=kind == "course_model")


@pytest.mark.parametrize(
    "kind", ["pt2", "torchscript", "onnx", "course_state_dict", "course_model"]
)
def test_it_predicts_what_a_plain_process_predicts(kind, runner, tmp_path):
    fmt, data = prepare_upload(
        _model_file(kind, tmp_path), allowed_formats=tuple(formats.FORMATS), max_bytes=50 * MB
    )
    job = Job("keypoints", fmt, data, batch_size=2)
    sandboxed = runner.predict(job, INPUTS, BOUND)
    plain = ProcessRunner(allow_course_zip=True).predict(job, INPUTS, BOUND)
    assert sandboxed.predictions.shape == (5, 30)
    np.testing.assert_array_equal(sandboxed.predictions, plain.predictions)
    assert sandboxed.params == plain.params > 0


def test_process_runner_refuses_the_course_zip_by_default(tmp_path):
    fmt, data = prepare_upload(
        _course_zip(tmp_path, False), allowed_formats=tuple(formats.FORMATS), max_bytes=50 * MB
    )
    with pytest.raises(GradingError) as caught:
        ProcessRunner().predict(Job("keypoints", fmt, data), INPUTS, BOUND)
    assert caught.value.code == "needs_sandbox"


def _probe(runner: SandboxRunner, tmp_path: Path, body: str, limits: Limits | None = None) -> dict:
    """Run ``body`` (which sets ``report``) inside a job; return the report."""
    code = "import json, sys\nreport = {}\n" + textwrap.dedent(body)
    code += "\nprint('PROBE ' + json.dumps(report), file=sys.stderr)\n"
    path = attacks.course_zip(tmp_path / "probe.zip", code, at_load=True)
    fmt, data = prepare_upload(path, allowed_formats=(formats.COURSE_ZIP,), max_bytes=50 * MB)
    job = Job("keypoints", fmt, data, limits=limits or Limits())
    log = runner.predict(job, INPUTS, BOUND).log
    line = next(line for line in log.splitlines() if line.startswith("PROBE "))
    return json.loads(line[len("PROBE ") :])


#: all a job may find at /: system folders, the runtime's and the repo's parents, its own /tmp
SANDBOX_ROOT = {"usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc", "dev", "proc"}
# plus /tmp and the top folders of the runtime and repo binds (/root, /work, or /run for a
# checkout under /tmp)
SANDBOX_ROOT |= {"tmp"} | {
    inside(path).split("/")[1] for path in (*current_layout().runtime, *current_layout().packages)
}

WRITABLE_CANDIDATES = [
    "/",
    "/tmp",
    "/dev",
    "/dev/shm",
    "/proc",
    "/usr",
    "/usr/lib",
    "/etc",
    "/root",
    str(Path(sys.prefix)),
    str(Path(sys.base_prefix)),
    str(Path(__file__).resolve().parents[2] / "grader"),
    str(Path(__file__).resolve().parents[2] / "eval_data"),
]


def test_a_job_is_locked_in(runner, tmp_path):
    report = _probe(
        runner,
        tmp_path,
        f"""
        import os, resource, socket
        status = dict(l.split(":", 1) for l in open("/proc/self/status") if ":" in l)
        report["ids"] = [os.getuid(), os.geteuid(), os.getgid(), os.getegid(), os.getgroups()]
        report["status"] = {{k: status[k].strip() for k in
            ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp")}}
        report["ns"] = {{n: os.readlink("/proc/self/ns/" + n)
                         for n in ("pid", "net", "mnt", "ipc", "uts")}}
        report["fds"] = []
        for fd in os.listdir("/proc/self/fd"):
            try:
                report["fds"].append(os.readlink("/proc/self/fd/" + fd))
            except OSError:
                pass  # the listing's own fd, closed by now
        report["pid"] = os.getpid()
        report["pids"] = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
        report["root"] = sorted(os.listdir("/"))
        report["root_home"] = sorted(os.listdir("/root")) if os.path.isdir("/root") else []
        report["env"] = dict(os.environ)
        report["hostname"] = socket.gethostname()
        report["net"] = [l.split(":")[0].strip() for l in open("/proc/net/dev").readlines()[2:]]
        report["writable"] = []
        for folder in {WRITABLE_CANDIDATES!r}:
            try:
                open(os.path.join(folder, "probe-write"), "w").close()
                report["writable"].append(folder)
            except OSError:
                pass
        report["limits"] = {{name: resource.getrlimit(getattr(resource, name))[0]
            for name in ("RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_NOFILE", "RLIMIT_NPROC")}}
        """,
        Limits(cpu_seconds=77, write_bytes=5 * MB, open_files=99, processes=55),
    )
    assert report["ids"] == [65534, 65534, 65534, 65534, []]
    assert report["status"] == {
        "CapInh": "0000000000000000",
        "CapPrm": "0000000000000000",
        "CapEff": "0000000000000000",
        "CapBnd": "0000000000000000",
        "CapAmb": "0000000000000000",
        "NoNewPrivs": "1",
        "Seccomp": "2",
    }
    for name, link in report["ns"].items():
        assert link != os.readlink(f"/proc/self/ns/{name}"), f"{name} namespace shared with host"
    # the job's pipes only (stdin, stderr on fds 1 and 2, the protocol's dup of stdout): no
    # control socket, no other job's pipe, nothing of the zygote's
    assert len(report["fds"]) == 4, report["fds"]
    assert all(link.startswith("pipe:") for link in report["fds"]), report["fds"]
    # pid 2 of its own namespace, seeing only itself (the root-owned init is hidden)
    assert report["pid"] == 2 and report["pids"] == [2]
    assert set(report["root"]) <= SANDBOX_ROOT
    # /root holds only the parents of the runtime's read-only binds (a pyenv interpreter, say)
    layout = current_layout()
    mounted = [Path(inside(path)) for path in (*layout.runtime, *layout.packages)]
    assert report["root_home"] == sorted(
        {p.relative_to("/root").parts[0] for p in mounted if p.is_relative_to("/root")}
    )
    # built from scratch: the sandbox's own variables, plus what bwrap and torch's import set
    extra = set(report["env"]) - set(clean_env({"PYTHONPATH": "", "TMPDIR": "", **ZYGOTE_CUDA_ENV}))
    assert extra <= {"PWD", "TORCHINDUCTOR_CACHE_DIR"}
    assert report["env"].get("PWD", "/") == "/"
    assert report["env"].get("TORCHINDUCTOR_CACHE_DIR", "/tmp").startswith("/tmp")
    assert report["hostname"] == "sandbox"
    assert report["net"] == ["lo"]
    assert report["writable"] == ["/tmp"]
    assert report["limits"] == {
        "RLIMIT_CPU": 77,
        "RLIMIT_FSIZE": 5 * MB,
        "RLIMIT_NOFILE": 99,
        "RLIMIT_NPROC": 55,
    }


def test_consecutive_jobs_share_no_tmp_and_no_processes(runner, tmp_path):
    first = _probe(
        runner,
        tmp_path,
        """
        import os, subprocess
        open("/tmp/left-behind", "w").write("job one")
        if os.fork() == 0:  # a daemon that would outlive the job if it could
            os.setsid()
            import time
            time.sleep(600)
        report["tmp"] = sorted(os.listdir("/tmp"))
        """,
    )
    assert "left-behind" in first["tmp"]
    second = _probe(
        runner,
        tmp_path,
        """
        import os
        report["tmp"] = sorted(os.listdir("/tmp"))
        report["pids"] = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
        """,
    )
    assert not [name for name in second["tmp"] if not name.startswith("submission-")]
    assert second["pids"] == [2]


@pytest.mark.slow
def test_runners_with_their_own_uid_do_not_share_a_process_budget(runner, tmp_path):
    """One worker per GPU grades at the same time on one host. The kernel counts RLIMIT_NPROC
    per uid, so a model that forks up to its limit would leave a job of the same uid unable to
    start a single thread; each runner's own uid keeps the other job unaffected."""
    other = SandboxRunner.create(uid=64000)
    hog_dir, probe_dir = tmp_path / "hog", tmp_path / "probe"
    hog_dir.mkdir()
    probe_dir.mkdir()
    hog = """
        import os, time
        for _ in range(40):
            try:
                if os.fork() == 0:
                    time.sleep(600)
            except OSError:
                break
        time.sleep(600)
    """
    failures: list[BaseException] = []

    def run_hog() -> None:
        try:
            _probe(runner, hog_dir, hog, Limits(wall_seconds=8, processes=16))
        except GradingError as exc:  # the expected end: its wall clock runs out
            if exc.code != "timeout":
                failures.append(exc)
        except BaseException as exc:
            failures.append(exc)

    thread = threading.Thread(target=run_hog)
    try:
        thread.start()
        deadline = time.monotonic() + 6
        while attacks.tasks_of(65534) < 16 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert attacks.tasks_of(65534) >= 16, "the hog did not use up its process budget"
        report = _probe(
            other,
            probe_dir,
            """
            import os
            report["uid"] = [os.getuid(), os.getgid()]
            children = []
            for _ in range(8):
                try:
                    pid = os.fork()
                except OSError:
                    break
                if pid == 0:
                    os._exit(0)
                children.append(pid)
            report["forked"] = len(children)
            for pid in children:
                os.waitpid(pid, 0)
            """,
            Limits(processes=16),
        )
    finally:
        thread.join(30)
        other.close()
    assert failures == []
    assert report == {"uid": [64000, 64000], "forked": 8}


def test_a_runner_refuses_a_privileged_uid():
    with pytest.raises(ValueError, match="not an unprivileged uid"):
        SandboxRunner("/usr/bin/bwrap", uid=0)


def test_without_bubblewrap_nothing_runs(monkeypatch):
    started: list[object] = []
    monkeypatch.setattr(subprocess, "Popen", lambda *a, **k: started.append(a))
    with pytest.raises(PlatformError) as caught:
        SandboxRunner.create(bwrap="/nonexistent/bwrap")
    assert caught.value.code == "sandbox_unavailable"
    assert "bubblewrap not found" in caught.value.detail
    assert started == []


def test_a_failing_self_test_fails_closed(monkeypatch):
    # A bwrap that exits at once stands for a host where namespaces are denied.
    with pytest.raises(PlatformError) as caught:
        SandboxRunner.create(bwrap="/bin/false")
    assert caught.value.code == "sandbox_unavailable"


@pytest.mark.slow  # over four seconds: grades through the sandbox
def test_it_restarts_a_dead_zygote_and_blames_the_host_for_the_lost_job(runner, tmp_path):
    path = attacks.course_zip(tmp_path / "slow.zip", "import time\ntime.sleep(30)")
    fmt, data = prepare_upload(path, allowed_formats=(formats.COURSE_ZIP,), max_bytes=50 * MB)
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            runner.predict(Job("keypoints", fmt, data), INPUTS, BOUND)
        except BaseException as exc:  # handed to the test thread
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    time.sleep(1.0)
    zygote = runner._zygote
    assert zygote is not None
    os.killpg(zygote.proc.pid, 9)  # the host loses the sandbox mid-job
    thread.join(30)
    assert outcome and isinstance(outcome[0], PlatformError), outcome
    pt2 = attacks.export_pt2(attacks.TinyKeypoints(), tmp_path / "after.pt2")
    fmt, data = prepare_upload(pt2, allowed_formats=(formats.PT2,), max_bytes=50 * MB)
    assert runner.predict(Job("keypoints", fmt, data), INPUTS, BOUND).predictions.shape == (5, 30)
    assert runner._zygote is not zygote


def test_evaluate_grades_through_the_sandbox(runner, tmp_path):
    attacks.write_dataset(tmp_path / "data")
    path = attacks.export_pt2(attacks.TinyKeypoints(), tmp_path / "m.pt2")
    result = evaluate(path, "keypoints", tmp_path / "data", runner)
    assert result.runner == "sandbox" and result.metrics["count"] == 6
