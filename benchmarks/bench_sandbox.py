"""What the sandbox costs: ``python -m benchmarks.bench_sandbox [--quick]`` from the repo root.

1. The course's seed-size keypoint model (2,750,819 parameters) exported to ``.pt2``, on 1,000
   random images: in-process inference (load + predict, in a warm process, as the sandbox's
   zygote is warm) against ``SandboxRunner.predict`` and ``ProcessRunner.predict``, in one run;
   the difference to in-process is the sandbox's fixed cost per job.
2. 200 small jobs in a row through one long-lived ``SandboxRunner``: resident memory of the
   parent and of the zygote at the start and the end, and per-job latency (p50 / p95).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

from benchmarks.reference_models import KEYPOINT_SEED_PARAMS, keypoint_seed_model
from benchmarks.subject import KIND
from grader import formats
from grader.formats import load_model
from grader.formats.upload import prepare_upload
from grader.kinds import get_kind
from grader.limits import MB
from grader.runners import Job
from grader.runners.process import ProcessRunner
from grader.sandbox import SandboxRunner

T = TypeVar("T")
BATCH = 32


def export(path: Path) -> bytes:
    model = keypoint_seed_model().eval()
    program = torch.export.export(
        model, (torch.rand(2, 1, 96, 96),), dynamic_shapes=({0: torch.export.Dim("batch")},)
    )
    torch.export.save(program, path)
    fmt, data = prepare_upload(path, allowed_formats=(formats.PT2,), max_bytes=50 * MB)
    assert fmt == formats.PT2
    return data


def in_process(data: bytes, inputs: np.ndarray, threads: int = 1) -> np.ndarray:
    """What the child does, in this process: load, then predict batch by batch."""
    predict = load_model(formats.PT2, data, "cpu", threads, get_kind(KIND)).predict
    with torch.inference_mode():
        return np.concatenate(
            [predict(np.array(inputs[i : i + BATCH])) for i in range(0, len(inputs), BATCH)]
        )


def rss_of(pid: str = "self") -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def timed(label: str, run: Callable[[], T], repeats: int = 1) -> tuple[float, T]:
    """Median seconds of ``repeats`` runs (this machine is shared: one run is noisy)."""
    times = []
    for n in range(repeats):
        print(f"  {label} ({n + 1}/{repeats}) ...", flush=True)
        started = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - started)
    seconds = statistics.median(times)
    print(f"  {label}: {seconds:.3f} s (runs: {', '.join(f'{t:.3f}' for t in times)})", flush=True)
    return seconds, result


def compare(runner: SandboxRunner, data: bytes, count: int, repeats: int) -> None:
    inputs = np.random.default_rng(0).random((count, 1, 96, 96), dtype=np.float32)
    job = Job(KIND, formats.PT2, data, batch_size=BATCH)
    bound = count * 30 * 8 + 4096
    print(f"\n[1] seed keypoint model, {count} images, batch {BATCH}, 1 thread", flush=True)
    in_process(data, inputs[:BATCH])  # warm this process as the zygote is warm
    base, expected = timed("in-process", lambda: in_process(data, inputs), repeats)
    sandboxed, result = timed("sandbox", lambda: runner.predict(job, inputs, bound), repeats)
    plain, _ = timed("process", lambda: ProcessRunner().predict(job, inputs, bound))
    assert np.array_equal(result.predictions, expected)
    print(f"\n  {'runner':<12}{'seconds':>9}{'overhead s':>12}{'ratio':>8}")
    for name, seconds in (("in-process", base), ("sandbox", sandboxed), ("process", plain)):
        print(f"  {name:<12}{seconds:>9.3f}{seconds - base:>12.3f}{seconds / base:>8.2f}")


def many_jobs(runner: SandboxRunner, data: bytes, jobs: int) -> None:
    inputs = np.random.default_rng(1).random((16, 1, 96, 96), dtype=np.float32)
    job = Job(KIND, formats.PT2, data, batch_size=16)
    print(f"\n[2] {jobs} jobs of 16 images through one SandboxRunner", flush=True)
    runner.predict(job, inputs, 1 << 20)
    start = (rss_of(), runner.zygote_rss())
    latencies = []
    for n in range(1, jobs + 1):
        started = time.perf_counter()
        runner.predict(job, inputs, 1 << 20)
        latencies.append(time.perf_counter() - started)
        if n % max(1, jobs // 10) == 0:
            print(f"  {n}/{jobs} jobs, last {latencies[-1]:.3f} s", flush=True)
    end = (rss_of(), runner.zygote_rss())
    for name, before, after in (("parent", start[0], end[0]), ("zygote", start[1], end[1])):
        print(f"  {name} RSS: {before / MB:.0f} MB -> {after / MB:.0f} MB")
    cuts = statistics.quantiles(latencies, n=20)
    print(f"  latency p50 {statistics.median(latencies):.3f} s, p95 {cuts[18]:.3f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_sandbox")
    parser.add_argument("--quick", action="store_true", help="100 images, 20 jobs, no repeats")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as folder:
        print("exporting the reference model ...", flush=True)
        data = export(Path(folder) / "reference.pt2")
    print(f"  {KEYPOINT_SEED_PARAMS:,} parameters, {len(data) / MB:.1f} MB .pt2")
    _, runner = timed("starting the sandbox (zygote warm-up)", SandboxRunner.create)
    with runner:
        compare(runner, data, 100 if args.quick else 1000, 1 if args.quick else 3)
        many_jobs(runner, data, 20 if args.quick else 200)
    return 0


if __name__ == "__main__":
    sys.exit(main())
