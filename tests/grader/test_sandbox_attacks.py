"""Hostile models against the whole grading path (``grader.evaluate.evaluate`` + the sandbox).

Every test asserts both sides: grading failed with the expected code (or, where the parent
neutralises the file rather than refusing it, graded normally), and the attack had no effect:
no marker file appeared on the host, no host secret, environment value or label value came back
in a message, detail or log, and no connection reached a listener on 127.0.0.1. The first test
shows the ``.pt2`` payloads are live: loaded without the grader's checks they do run.
"""

from __future__ import annotations

import os
import random
import socket
import string
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from grader import formats
from grader.errors import GradingError
from grader.evaluate import Evaluation, evaluate
from grader.limits import MB, Limits
from grader.sandbox import SandboxRunner
from tests.grader import attacks

#: this checkout, wherever CI cloned it: the sandbox must not see it
REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.sandbox

LIMITS = Limits(
    wall_seconds=30, cpu_seconds=30, memory_bytes=1 << 30, write_bytes=8 * MB, tmp_bytes=32 * MB
)
NOBODY = 65534


@dataclass
class Host:
    """What the attacks aim at, all outside the sandbox."""

    root: Path
    dataset: Path
    secret_file: Path
    token: str
    labels: list[str]
    listener: socket.socket
    accepted: list[object] = field(default_factory=list)

    def marker(self, name: str) -> Path:
        return self.root / f"marker-{name}"


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    root = tmp_path_factory.mktemp("host")
    token = "".join(random.choices(string.ascii_lowercase, k=32))
    secret = root / "secret.txt"
    secret.write_text(f"SECRET {token}\n")
    os.environ["GRADER_TEST_SECRET"] = token  # what a careless runner would pass on
    labels = attacks.write_dataset(root / "dataset")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    state = Host(root, root / "dataset", secret, token, labels, listener)

    def accept() -> None:
        while True:
            try:
                state.accepted.append(listener.accept())
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield state
    listener.close()
    os.environ.pop("GRADER_TEST_SECRET", None)


@pytest.fixture(scope="module")
def runner(host: Host) -> SandboxRunner:
    return attacks.shared_runner()


@pytest.fixture(scope="module")
def base_pt2(host: Host) -> Path:
    return attacks.export_pt2(attacks.TinyKeypoints(), host.root / "base.pt2")


def grade(
    path: Path, host: Host, runner: SandboxRunner, limits: Limits = LIMITS
) -> Evaluation | GradingError:
    try:
        return evaluate(
            path,
            "keypoints",
            host.dataset,
            runner,
            limits=limits,
            allowed_formats=tuple(formats.FORMATS),
        )
    except GradingError as exc:
        return exc


def assert_contained(outcome: Evaluation | GradingError, host: Host, *markers: Path) -> None:
    """Nothing of the host came back, nothing was written on it, nobody called out."""
    text = (
        f"{outcome.message}\n{outcome.detail}"
        if isinstance(outcome, GradingError)
        else f"{outcome.to_json()}\n{outcome.log}"
    )
    assert host.token not in text
    assert "LEAK" not in text
    assert not [label for label in host.labels if label in text]
    for marker in markers:
        assert not marker.exists(), f"{marker} was written on the host"
    assert not host.accepted, "a connection reached the host's listener"


def assert_rejected(outcome: Evaluation | GradingError, code: str) -> GradingError:
    assert isinstance(outcome, GradingError), f"expected {code}, but it was graded: {outcome}"
    assert outcome.code == code, (outcome.code, outcome.message, outcome.detail[-3000:])
    return outcome


# --- the payloads are real ----------------------------------------------------------------


def test_it_builds_pt2_payloads_that_run_when_loaded_unchecked(base_pt2: Path, host: Host):
    root = host.root / "live"
    root.mkdir()
    builders = [
        attacks.pt2_use_pickle,
        attacks.pt2_expr_injection,
        attacks.pt2_sample_inputs,
        attacks.pt2_guards_code,
        attacks.pt2_legacy_weights,
        attacks.pt2_opaque_constant,
    ]
    files = {
        b.__name__: b(base_pt2, root / f"{b.__name__}.pt2", root / b.__name__) for b in builders
    }
    script = (
        "import sys, torch\n"
        "for path in sys.argv[1:]:\n"
        "    try:\n"
        "        torch.export.load(path).module()(torch.rand(2, 1, 96, 96))\n"
        "    except Exception:\n"
        "        pass\n"
    )
    # A throwaway process on purpose: this is what loading without the grader's checks does.
    subprocess.run([sys.executable, "-c", script, *map(str, files.values())], check=True)
    assert sorted(p.name for p in root.iterdir() if not p.suffix) == sorted(files)


# --- refused or neutralised in the parent -------------------------------------------------


@pytest.mark.parametrize(
    ("builder", "code"),
    [
        (attacks.pt2_use_pickle, "pt2_pickle"),
        (attacks.pt2_expr_injection, "pt2_expression"),
        (attacks.pt2_opaque_constant, "pt2_constant"),
        (attacks.pt2_legacy_weights, "pt2_member"),
        (attacks.pt2_recompressed, "pt2_layout"),
    ],
)
def test_it_refuses_pt2_code_smuggling(builder, code, base_pt2, host, runner):
    marker = host.marker(builder.__name__)
    path = builder(base_pt2, host.root / f"{builder.__name__}.pt2", marker)
    outcome = grade(path, host, runner)
    assert_rejected(outcome, code)
    assert_contained(outcome, host, marker)


@pytest.mark.parametrize("builder", [attacks.pt2_sample_inputs, attacks.pt2_guards_code])
def test_it_grades_pt2_without_running_its_sample_inputs_or_guards(builder, base_pt2, host, runner):
    marker = host.marker(builder.__name__)
    outcome = grade(builder(base_pt2, host.root / f"{builder.__name__}.pt2", marker), host, runner)
    # Replaced (sample_inputs) and emptied (guards_code) in the parent, then loaded in the
    # sandbox: graded normally, and the payload never ran, not even inside the sandbox.
    assert isinstance(outcome, Evaluation), outcome
    assert "pwned" not in outcome.log
    assert_contained(outcome, host, marker)


@pytest.mark.parametrize("location", ["dataset", "relative"])
def test_it_refuses_onnx_external_data(location, host, runner):
    target = str(host.dataset / "test.csv") if location == "dataset" else "../../secret.txt"
    outcome = grade(
        attacks.onnx_external_data(host.root / f"ext-{location}.onnx", target), host, runner
    )
    assert_rejected(outcome, "onnx_external_data")
    assert_contained(outcome, host)


@pytest.mark.parametrize(
    ("builder", "code"),
    [
        (attacks.course_zip_bomb, "archive_bomb"),
        (attacks.course_zip_traversal, "archive_path"),
        (attacks.course_zip_duplicates, "archive_duplicate"),
    ],
)
def test_it_refuses_zip_tricks(builder, code, host, runner):
    outcome = grade(builder(host.root / f"{builder.__name__}.zip"), host, runner)
    assert_rejected(outcome, code)
    assert not (host.root.parent / "evil.py").exists()
    assert_contained(outcome, host)


def test_it_refuses_symlink_entries(host, runner):
    path = attacks.course_zip_symlink(host.root / "symlink.zip", str(host.secret_file))
    outcome = grade(path, host, runner)
    assert_rejected(outcome, "archive_symlink")
    assert_contained(outcome, host)


# --- contained by the sandbox -------------------------------------------------------------


def test_torchscript_cannot_read_host_files(host, runner):
    outcome = grade(
        attacks.torchscript_reads(host.root / "reads.pt", host.secret_file), host, runner
    )
    assert_rejected(outcome, "model_error")
    assert_contained(outcome, host)


def test_torchscript_cannot_write_host_files(host, runner):
    marker = host.marker("torchscript")
    outcome = grade(attacks.torchscript_writes(host.root / "writes.pt", marker), host, runner)
    assert_rejected(outcome, "model_error")
    assert_contained(outcome, host, marker)


def test_pickled_module_payload_runs_only_inside(host, runner):
    marker = host.marker("pickled-module")
    payload = attacks.pickled_exec(attacks.touch_code(marker))
    path = attacks.write_zip(
        host.root / "pickled.zip",
        {"exercise_code/__init__.py": b"", "models/keypoints.model": payload},
    )
    outcome = grade(path, host, runner)
    assert_rejected(outcome, "model_error")
    assert "FileNotFoundError" in outcome.detail  # it ran, and found no host to write to
    assert_contained(outcome, host, marker)


def _course(host: Host, name: str, body: str, *, at_load: bool = False) -> Path:
    return attacks.course_zip(host.root / f"{name}.zip", body, at_load=at_load)


def test_environment_and_proc_environ_hold_no_secrets(host, runner):
    body = f"""
        import os
        seen = [repr(dict(os.environ))]
        for path in ("/proc/1/environ", "/proc/self/environ", "/proc/2/environ"):
            try:
                seen.append(open(path, "rb").read().decode(errors="replace"))
            except OSError as exc:
                seen.append(type(exc).__name__)
        if any({host.token!r} in text for text in seen):
            raise RuntimeError("LEAK " + " ".join(seen))
        raise RuntimeError("contained")
    """
    outcome = grade(_course(host, "environ", body, at_load=True), host, runner)
    assert "contained" in assert_rejected(outcome, "model_error").detail
    assert_contained(outcome, host)


def test_host_files_and_the_dataset_are_invisible(host, runner):
    targets = [
        str(host.secret_file),
        str(host.dataset / "test.csv"),
        str(host.dataset / "manifest.json"),
        # the project's own files: settings (secrets come from the environment next to them)
        str(REPO / "config" / "settings.py"),
        str(REPO / "README.md"),
        "/etc/passwd",
        "/etc/shadow",
        "/root/.bash_history",
    ]
    body = f"""
        import os
        found = []
        for path in {targets!r}:
            try:
                found.append(path + ": " + open(path).read(200))
            except OSError:
                pass
        # The checkout's grader and eval_data packages are bound read-only at their own path:
        # everything else of it stays invisible.
        for folder in ({str(host.dataset)!r}, {str(host.root)!r}, {str(REPO / "config")!r},
                       {str(REPO / "submissions")!r}, "/home"):
            try:
                found.append(folder + ": " + " ".join(os.listdir(folder)))
            except OSError:
                pass
        if found:
            raise RuntimeError("LEAK " + " | ".join(found))
        raise RuntimeError("contained")
    """
    outcome = grade(_course(host, "reads", body), host, runner)
    assert "contained" in assert_rejected(outcome, "model_error").detail
    assert_contained(outcome, host)


def test_host_and_runtime_are_read_only(host, runner):
    marker = host.marker("course-write")
    repo_file = Path(__file__).resolve().parents[2] / "grader" / "pwned.py"
    venv_file = Path(sys.prefix) / "pwned.pth"
    targets = [str(marker), str(repo_file), str(venv_file), "/usr/pwned", "/pwned", "/dev/pwned"]
    body = f"""
        written = []
        for path in {targets!r}:
            try:
                open(path, "w").write("pwned")
                written.append(path)
            except OSError:
                pass
        if written:
            raise RuntimeError("LEAK wrote " + " ".join(written))
        raise RuntimeError("contained")
    """
    outcome = grade(_course(host, "writes", body), host, runner)
    assert "contained" in assert_rejected(outcome, "model_error").detail
    assert_contained(outcome, host, marker, repo_file, venv_file)


def test_sockets_are_refused(host, runner):
    port = host.listener.getsockname()[1]
    body = f"""
        import socket
        reached = []
        for family, address in ((socket.AF_INET, ("127.0.0.1", {port})), (socket.AF_UNIX, "\\0x")):
            try:
                sock = socket.socket(family)
                sock.connect(address)
                reached.append(str(address))
            except OSError:
                pass
        try:
            socket.socketpair()
            reached.append("socketpair")
        except OSError:
            pass
        if reached:
            raise RuntimeError("LEAK reached " + " ".join(reached))
        raise RuntimeError("contained")
    """
    outcome = grade(_course(host, "socket", body), host, runner)
    assert "contained" in assert_rejected(outcome, "model_error").detail
    time.sleep(0.2)  # give a connection that got through time to be accepted
    assert_contained(outcome, host)


@pytest.mark.slow  # over four seconds: grades through the sandbox
def test_a_fork_bomb_dies_with_its_job(host, runner):
    body = """
        import os, time
        for _ in range(200):
            try:
                pid = os.fork()
            except OSError:
                break
            if pid == 0:
                os.setsid()  # out of the job's process group: only the pid namespace holds it
                while True:
                    try:
                        os.fork()
                    except OSError:
                        time.sleep(0.01)
        time.sleep(600)
    """
    limits = Limits(wall_seconds=4, processes=32, memory_bytes=1 << 30)
    outcome = grade(_course(host, "forkbomb", body), host, runner, limits)
    assert_rejected(outcome, "timeout")
    deadline = time.monotonic() + 5
    while attacks.processes_of(NOBODY) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert attacks.processes_of(NOBODY) == []
    assert_contained(outcome, host)
    # and the sandbox still grades
    assert isinstance(grade(_course(host, "after-bomb", "pass"), host, runner), Evaluation)


@pytest.mark.parametrize(
    ("name", "body", "limits", "code"),
    [
        (
            "memory",
            "import torch\ntorch.ones(1 << 32, dtype=torch.uint8)",
            Limits(memory_bytes=256 * MB),
            "memory",
        ),
        (
            "python-memory",
            "blob = bytearray(8 << 30)",
            Limits(memory_bytes=256 * MB),
            "memory",
        ),
        ("cpu", "while True:\n    pass", Limits(cpu_seconds=2, wall_seconds=60), "cpu_time"),
        ("sleep", "import time\ntime.sleep(600)", Limits(wall_seconds=3), "timeout"),
        (
            "huge-file",
            "open('/tmp/big', 'wb').write(bytes(16 << 20))",
            Limits(write_bytes=4 * MB),
            "file_size",
        ),
        (
            "tmp-filled",
            "for i in range(64):\n    open(f'/tmp/f{i}', 'wb').write(bytes(1 << 20))",
            Limits(tmp_bytes=8 * MB),
            "disk_full",
        ),
        (
            "unshare",
            "import ctypes\nctypes.CDLL(None).unshare(0x10000000)",
            LIMITS,
            "forbidden_call",
        ),
        ("ptrace", "import ctypes\nctypes.CDLL(None).ptrace(0, 0, 0, 0)", LIMITS, "forbidden_call"),
    ],
)
def test_it_stops_models_at_their_limits(name, body, limits, code, host, runner):
    outcome = grade(_course(host, name, body), host, runner, limits)
    error = assert_rejected(outcome, code)
    assert error.message.startswith("your model")
    assert_contained(outcome, host)


def test_a_forged_enormous_output_is_cut_off(host, runner):
    body = """
        import json, os, stat, struct, time
        header = json.dumps({"type": "result", "dtype": "<f4", "shape": [1 << 40],
                             "size": 1 << 42}).encode()
        for fd in range(1, 64):
            try:
                if stat.S_ISFIFO(os.fstat(fd).st_mode):
                    os.write(fd, struct.pack(">I", len(header)) + header)
            except OSError:
                pass
        time.sleep(600)
    """
    outcome = grade(_course(host, "forged", body), host, runner)
    assert_rejected(outcome, "output_too_large")
    assert_contained(outcome, host)


@pytest.mark.parametrize(
    ("model", "code"),
    [(attacks.NonFinite(), "output_not_finite"), (attacks.HalfOutput(), "output_shape")],
)
def test_it_refuses_bad_outputs(model, code, host, runner):
    path = attacks.export_pt2(model, host.root / f"{type(model).__name__}.pt2")
    outcome = grade(path, host, runner)
    assert_rejected(outcome, code)
    assert_contained(outcome, host)


def test_labels_never_reach_the_model(base_pt2, host, runner, monkeypatch):
    import eval_data
    import grader.runners.drive

    frames: list[tuple[dict, bytes]] = []
    real = grader.runners.drive.write_message

    def spy(stream, header, payload=b""):
        frames.append((dict(header), bytes(payload)))
        real(stream, header, payload)

    monkeypatch.setattr(grader.runners.drive, "write_message", spy)
    outcome = grade(base_pt2, host, runner)
    assert isinstance(outcome, Evaluation), outcome
    labels = eval_data.load(host.dataset, "keypoints").labels
    assert [header["type"] for header, _ in frames] == ["job", "inputs"]
    assert all(labels.tobytes() not in payload for _, payload in frames)
    assert all(labels[0].tobytes() not in payload for _, payload in frames)
    assert not [label for label in host.labels if label in repr(frames[0][0])]
    assert_contained(outcome, host)


# --- what the model writes never reaches the student ----------------------------------------


@pytest.mark.parametrize("at_load", [False, True])
def test_an_exception_class_named_from_the_inputs_is_not_shown(at_load, host, runner):
    # At load time the inputs are already in the process (the frame sits in its stdin).
    body = """
        import gc, sys
        import numpy as np
        if x is None:
            arrays = [o for o in gc.get_objects() if isinstance(o, np.ndarray) and o.size > 1000]
            pixels = arrays[0].ravel() if arrays else np.zeros(1)
        else:
            pixels = x[0].flatten().numpy()
        name = "LEAK" + "".join(chr(97 + int(float(v) * 25)) for v in pixels[:40])
        raise type(name, (Exception,), {})(name)
    """
    outcome = grade(_course(host, f"dynamic-class-{at_load}", body, at_load=at_load), host, runner)
    error = assert_rejected(outcome, "model_error")
    assert error.message.startswith("your model raised an exception")
    assert "LEAK" in error.detail  # the staff log keeps the whole story
    assert "LEAK" not in error.message


def test_a_forged_error_frame_is_worded_by_the_parent(host, runner):
    # The model writes its own verdict on the protocol pipe: code, message, facts, class name.
    body = """
        import os, stat, sys
        from grader.protocol import write_message
        name = "LEAK" + "".join(chr(97 + int(float(v) * 25)) for v in x[0].flatten()[:40])
        header = {"type": "error", "code": "output_not_finite", "message": name,
                  "exception": name, "facts": {"nan": 10 ** 12, "inf": name}}
        for fd in range(3, 64):
            try:
                if stat.S_ISFIFO(os.fstat(fd).st_mode) and os.get_blocking(fd):
                    write_message(os.fdopen(fd, "wb"), header)
                    break
            except (OSError, ValueError):
                pass
        sys.stdout.flush()
    """
    outcome = grade(_course(host, "forged-error", body), host, runner)
    error = assert_rejected(outcome, "output_not_finite")
    assert "LEAK" not in error.message
    assert error.message.startswith("your model returned NaN for 6 of 6 images")
