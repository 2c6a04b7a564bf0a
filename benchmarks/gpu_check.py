"""Is the GPU path right? ``python -m benchmarks.gpu_check [--quick] [--gpu N]`` from the repo root.

On a machine with a CUDA GPU, through one ``SandboxRunner`` whose jobs may open GPU N:

1. grades the demo models (each kind, passing and failing) and the course's seed-size keypoint
   model (2,750,819 parameters, random weights) on ``cpu`` and on ``cuda:N``, and checks that
   each pair of scores agrees to a relative 1e-4;
2. measures the sandbox's cost per job on the GPU: the seed model on the keypoint test set,
   loaded and run in this (warm) process against the same job in the sandbox;
3. checks that a job sees exactly one GPU, its own: inside the sandbox as the worker builds it,
   CUDA counts one device even with ``CUDA_VISIBLE_DEVICES`` removed, and only that GPU's
   device node exists;

and prints one table. Exits 1 if a check fails. On a machine without a CUDA GPU it says so and
exits 0. ``--second-device cpu`` runs the whole comparison with the CPU on both sides, which
exercises this script where there is no GPU.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.subject import GPU_SET_SIZES, KIND

RELATIVE_TOLERANCE = 1e-4
BATCH = 32
#: hidden-set sizes per kind (full, --quick)
SET_SIZES = GPU_SET_SIZES


@dataclass
class Row:
    check: str
    cpu: str
    other: str
    verdict: str

    @property
    def ok(self) -> bool:
        return self.verdict.startswith("ok")


def cuda_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def relative(a: float, b: float) -> float:
    if math.isnan(a) and math.isnan(b):
        return 0.0
    if a == b:  # equal infinities, or exactly equal
        return 0.0
    return abs(a - b) / max(abs(a), abs(b), 1e-12)


def make_sets(root: Path, quick: bool) -> dict[str, Path]:
    from eval_data import get_kind, kind_names
    from eval_data.manifest import write_manifest

    folders = {}
    for task in kind_names():
        folder = root / task
        folder.mkdir(parents=True)
        full, small = SET_SIZES.get(task, (32, 8))
        get_kind(task).synth(folder, small if quick else full, 7)
        write_manifest(folder, task)
        folders[task] = folder
    return folders


def seed_model(path: Path) -> Path:
    import torch

    from benchmarks.reference_models import export_pt2, keypoint_seed_model

    torch.manual_seed(0)
    export_pt2(keypoint_seed_model(), torch.rand(2, 1, 96, 96), str(path))
    return path


def models(root: Path, quick: bool) -> list[tuple[str, str, Path]]:
    """(name, task, file) of every model to grade on both devices."""
    root.mkdir(parents=True, exist_ok=True)
    found = [("keypoint seed model", KIND, seed_model(root / "seed.pt2"))]
    if quick:
        return found
    from eval_data.demo_models import build_demo_models

    print("training the demo models ...", flush=True)
    for name, path in sorted(build_demo_models(root / "demo", seed=0).items()):
        found.append((f"demo {name}", name.rsplit("_", 1)[0], path))
    return found


def grade_both(runner: object, sets: dict[str, Path], todo: list, second: str) -> list[Row]:
    from grader.evaluate import evaluate
    from grader.limits import Limits

    rows = []
    for name, task, path in todo:
        seen: list[tuple[float, float]] = []
        for device in ("cpu", second):
            started = time.perf_counter()
            evaluation = evaluate(
                path,
                task,
                sets[task],
                runner,  # type: ignore[arg-type]
                limits=Limits(wall_seconds=600.0, cpu_seconds=1200),
                device=device,
                batch_size=BATCH,
            )
            seen.append((evaluation.score, time.perf_counter() - started))
            print(f"  {name} on {device}: {evaluation.score:.6g} ({seen[-1][1]:.2f} s)")
        (a, ta), (b, tb) = seen
        diff = relative(a, b)
        verdict = (
            f"ok (rel {diff:.1e})" if diff <= RELATIVE_TOLERANCE else f"DIFFER (rel {diff:.1e})"
        )
        rows.append(
            Row(f"score: {name}", f"{a:.6g} / {ta:.2f} s", f"{b:.6g} / {tb:.2f} s", verdict)
        )
    return rows


def overhead(runner: object, data_dir: Path, model: Path, second: str) -> Row:
    """Per-job cost of the sandbox on ``second``: median of three, against a warm process."""
    import torch

    from grader import formats
    from grader.evaluate import load_dataset
    from grader.formats import load_model
    from grader.formats.upload import prepare_upload
    from grader.kinds import get_kind
    from grader.limits import MB, Limits
    from grader.runners import Job

    fmt, data = prepare_upload(model, allowed_formats=(formats.PT2,), max_bytes=100 * MB)
    inputs = load_dataset(KIND, data_dir).inputs
    kind = get_kind(KIND)

    def in_process() -> None:
        predict = load_model(fmt, data, second, 1, kind).predict
        with torch.inference_mode():
            for i in range(0, len(inputs), BATCH):
                predict(np.array(inputs[i : i + BATCH]))
        if second.startswith("cuda"):
            torch.cuda.synchronize()

    job = Job(KIND, fmt, data, second, BATCH, Limits(wall_seconds=600.0, cpu_seconds=1200))

    def sandboxed() -> None:
        runner.predict(job, inputs, len(inputs) * 30 * 8 + 4096)  # type: ignore[attr-defined]

    def median(run: object) -> float:
        times = []
        for _ in range(3):
            started = time.perf_counter()
            run()  # type: ignore[operator]
            times.append(time.perf_counter() - started)
        return statistics.median(times)

    in_process()  # warm this process, as the zygote is warm
    base, jail = median(in_process), median(sandboxed)
    return Row(
        f"per-job overhead on {second} ({len(inputs)} images, seed model)",
        f"in-process {base:.3f} s",
        f"sandbox {jail:.3f} s",
        f"ok (+{jail - base:.3f} s per job)",
    )


PROBE = """
import glob, os, torch
os.environ.pop("CUDA_VISIBLE_DEVICES", None)  # a model may clear it: the nodes must still hold
print(torch.cuda.device_count(), ",".join(sorted(glob.glob("/dev/nvidia[0-9]*"))))
"""


def isolation(index: int, host_gpus: int) -> Row:
    """What CUDA sees inside the sandbox the worker builds for GPU ``index``."""
    from grader.sandbox import bwrap

    path = shutil.which("bwrap") or "/usr/bin/bwrap"
    args = bwrap.command(path, bwrap.current_layout(), 0, gpu=index)
    python = args[args.index("--") + 1]
    args = [*args[: args.index("--") + 1], python, "-c", PROBE]
    done = subprocess.run(args, env={}, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        return Row("a job sees only its GPU", "", "", f"FAILED: {done.stderr.strip()[-300:]}")
    count, _, nodes = done.stdout.strip().rpartition("\n")[2].partition(" ")
    ok = count == "1" and nodes == f"/dev/nvidia{index}"
    return Row(
        "a job sees only its GPU",
        f"host: {host_gpus} GPU(s)",
        f"job: {count} GPU(s), nodes {nodes or 'none'}",
        "ok" if ok else "SEES MORE",
    )


def table(rows: list[Row], second: str) -> str:
    header = Row("check", "cpu", second, "verdict")
    widths = [max(len(getattr(r, f)) for r in [header, *rows]) for f in ("check", "cpu", "other")]
    lines = []
    for row in [header, *rows]:
        cells = (row.check, row.cpu, row.other)
        lines.append(
            "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + "  " + row.verdict
        )
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu_check")
    parser.add_argument("--quick", action="store_true", help="small sets, the seed model only")
    parser.add_argument("--gpu", type=int, default=0, help="the GPU to check (cuda:N)")
    parser.add_argument(
        "--second-device",
        choices=("cuda", "cpu"),
        default="cuda",
        help="cpu: compare the CPU with itself (checks this script without a GPU)",
    )
    args = parser.parse_args(argv)
    import torch

    host_gpus = cuda_count()
    if args.second_device == "cuda" and host_gpus == 0:
        print(
            f"no CUDA GPU on this machine (torch {torch.__version__}, built for CUDA"
            f" {torch.version.cuda or 'none'}): the GPU checks are skipped."
        )
        return 0
    if args.second_device == "cuda" and args.gpu >= host_gpus:
        print(f"--gpu {args.gpu}: this machine has {host_gpus} GPU(s)")
        return 2
    second = f"cuda:{args.gpu}" if args.second_device == "cuda" else "cpu"
    torch.set_num_threads(1)
    from grader.sandbox import SandboxRunner

    gpu = args.gpu if second.startswith("cuda") else None
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as folder:
        root = Path(folder)
        print("building the test sets and models ...", flush=True)
        sets = make_sets(root / "hidden", args.quick)
        todo = models(root / "models", args.quick)
        with SandboxRunner.create(gpu=gpu) as runner:
            rows = grade_both(runner, sets, todo, second)
            rows.append(overhead(runner, sets[KIND], todo[0][2], second))
    if gpu is not None:
        rows.append(isolation(gpu, host_gpus))
    print()
    print(table(rows, second))
    failed = [row for row in rows if not row.ok]
    print(f"\n{len(rows) - len(failed)}/{len(rows)} checks passed")
    return 1 if failed else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
