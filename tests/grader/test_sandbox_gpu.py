"""The sandbox's GPU support, as far as a machine without a GPU can check it: a job gets its
own GPU's device node and no other's, sees it as ``cuda:0``, and the zygote (which jobs are
forked from) never initialises CUDA, which does not survive a fork.
``benchmarks/gpu_check.py`` checks the rest on a machine with GPUs."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from grader.sandbox import bwrap
from grader.sandbox.bwrap import Layout, command, gpu_devices, gpu_index

ROOT = Path(__file__).resolve().parents[2]
LAYOUT = Layout(
    python="/opt/venv/bin/python",
    runtime=("/opt/venv",),
    repo="/opt/app",
    packages=("/opt/app/grader", "/opt/app/eval_data"),
)


@pytest.fixture
def fake_dev(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A /dev of a host with three GPUs (plain files stand in for the nodes)."""
    for name in ("nvidia0", "nvidia1", "nvidia2", "nvidiactl", "nvidia-uvm", "null", "sda"):
        (tmp_path / name).touch()
    monkeypatch.setattr(bwrap, "DEV", str(tmp_path))
    return tmp_path


def dev_binds(args: list[str]) -> list[str]:
    return [args[i + 1] for i, arg in enumerate(args) if arg == "--dev-bind"]


def setenv(args: list[str]) -> dict[str, str]:
    return {args[i + 1]: args[i + 2] for i, arg in enumerate(args) if arg == "--setenv"}


@pytest.mark.parametrize(
    ("device", "index"), [("cpu", None), ("cuda", 0), ("cuda:0", 0), ("cuda:3", 3)]
)
def test_it_reads_the_gpu_of_a_device(device: str, index: int | None) -> None:
    assert gpu_index(device) == index


def test_it_gives_a_job_its_own_gpu_and_the_drivers_nodes_only(fake_dev: Path) -> None:
    assert gpu_devices(1) == sorted(
        str(fake_dev / n) for n in ("nvidia-uvm", "nvidia1", "nvidiactl")
    )


def test_it_binds_one_gpu_into_the_sandbox_and_hides_it_from_the_zygote(fake_dev: Path) -> None:
    args = command("/usr/bin/bwrap", LAYOUT, 3, gpu=2)

    assert sorted(dev_binds(args)) == sorted(
        str(fake_dev / n) for n in ("nvidia-uvm", "nvidia2", "nvidiactl")
    )
    assert setenv(args)["CUDA_VISIBLE_DEVICES"] == ""


def test_it_binds_no_gpu_for_a_cpu_sandbox(fake_dev: Path) -> None:
    args = command("/usr/bin/bwrap", LAYOUT, 3)

    assert dev_binds(args) == []


@pytest.mark.slow
def test_it_warms_the_zygote_without_starting_the_cuda_driver() -> None:
    # The zygote's warm-up, in the environment bwrap gives it, with the driver's entry points
    # replaced by recorders: on a GPU host any call would start CUDA in the process that every
    # job is forked from, and the jobs' CUDA would then fail. (This torch is built with CUDA.)
    script = textwrap.dedent(
        """
        import torch
        touched = []
        def record(owner, name):
            real = getattr(owner, name)
            def wrapper(*args, **kwargs):
                touched.append(name)
                return real(*args, **kwargs)
            setattr(owner, name, wrapper)
        for name in ("_lazy_init", "init", "synchronize"):
            record(torch.cuda, name)
        for name in ("_cuda_getDeviceCount", "_cuda_init"):
            if hasattr(torch._C, name):
                record(torch._C, name)
        from grader.sandbox import zygote
        zygote.warm_up()
        print("touched:", sorted(set(touched)), "initialised:", zygote.cuda_touched())
        """
    )
    env = {**setenv(command("/usr/bin/bwrap", LAYOUT, 3, gpu=0)), "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert done.returncode == 0, done.stderr
    assert "touched: [] initialised: False" in done.stdout, done.stdout


def test_it_tells_when_a_process_has_initialised_cuda() -> None:
    # The zygote's check must be able to say yes: torch's flag, set as lazy init sets it.
    script = textwrap.dedent(
        """
        import torch
        from grader.sandbox import zygote
        before = zygote.cuda_touched()
        torch.cuda._initialized = True
        print(before, zygote.cuda_touched())
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "True"]


def gpu_check(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "benchmarks.gpu_check", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_it_skips_the_gpu_check_on_a_machine_without_cuda() -> None:
    # No GPU visible, whether the machine has one or not.
    done = gpu_check(CUDA_VISIBLE_DEVICES="")

    assert done.returncode == 0, done.stderr
    assert "no CUDA GPU on this machine" in done.stdout
    assert "the GPU checks are skipped" in done.stdout


@pytest.mark.slow
@pytest.mark.sandbox
def test_it_runs_the_gpu_checks_comparison_with_the_cpu_on_both_sides() -> None:
    done = gpu_check("--quick", "--second-device", "cpu")

    assert done.returncode == 0, done.stdout + done.stderr
    assert "score: keypoint seed model" in done.stdout
    assert "per-job overhead on cpu" in done.stdout
    assert "2/2 checks passed" in done.stdout
