"""What a job's threads buy: ``python -m benchmarks.bench_threads [--quick]`` from the repo root.

The course's seed-size keypoint model exported to ``.pt2``, on random images, graded through
one warm ``SandboxRunner`` with one thread per job (the old setting) and with every core of this
host (what ``worker.grading.job_threads`` gives a worker with one pool process), alternating in
one run so both see the same machine; prints the medians and their ratio.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.bench_sandbox import BATCH, export
from benchmarks.subject import KIND
from grader import formats
from grader.limits import Limits
from grader.runners import Job
from grader.sandbox import SandboxRunner


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer images and repeats")
    args, _ = parser.parse_known_args(argv)
    count, repeats = (200, 3) if args.quick else (1000, 5)
    cores = len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory() as tmp:
        data = export(Path(tmp) / "seed.pt2")
    inputs = np.random.default_rng(0).random((count, 1, 96, 96), dtype=np.float32)
    times: dict[int, list[float]] = {1: [], cores: []}
    print(f"seed keypoint model, {count} images, {cores} cores, {repeats} runs each", flush=True)
    with SandboxRunner.create() as runner:
        for n in range(repeats):
            for threads in times:
                limits = Limits(threads=threads)
                job = Job(KIND, formats.PT2, data, batch_size=BATCH, limits=limits)
                started = time.perf_counter()
                runner.predict(job, inputs, 1 << 20)
                took = time.perf_counter() - started
                times[threads].append(took)
                print(f"  run {n + 1}: {threads} thread(s): {took:.2f} s", flush=True)
    one, many = statistics.median(times[1]), statistics.median(times[cores])
    print(f"1 thread: {one:.2f} s; {cores} threads: {many:.2f} s; speed-up {one / many:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
