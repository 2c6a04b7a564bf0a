"""What a job's threads buy, and what the sandbox takes of them:
``python -m benchmarks.bench_threads [--quick]`` from the repo root.

The course's seed-size keypoint model exported to ``.pt2``, on random images, predicted

* in this process (load, then batch by batch, as the job's child does), and
* through one warm ``SandboxRunner`` (fork from the zygote, namespaces, seccomp, the inputs
  sent over the job's pipe, predictions back),

each with one thread and with every core of this host (what ``worker.grading.job_threads``
gives a worker with one pool process), all four alternating in one run so they see the same
machine. Prints the medians, the speed-up of the cores over one thread on both paths, and the
sandbox's share of in-process throughput (goal: at least 0.9 with every core).

Where the sandbox's remaining time goes is split in the same run: a job of one batch costs what
a job costs whatever its size (fork, loading the model, the pipe, the verdict), so
``sandboxed - in-process`` at one batch is that fixed cost, and the rest of the difference at the
full set grows with the images (the inputs' transfer, first-touch of the child's memory).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from benchmarks.bench_sandbox import BATCH, export, in_process
from benchmarks.subject import KIND
from grader import formats
from grader.limits import Limits
from grader.runners import Job
from grader.sandbox import SandboxRunner

#: the sandbox's share of in-process throughput the worker's default is held to
GOAL = 0.9


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer images and repeats")
    args, _ = parser.parse_known_args(argv)
    count, repeats = (200, 3) if args.quick else (1000, 5)
    cores = len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory() as tmp:
        data = export(Path(tmp) / "seed.pt2")
    inputs = np.random.default_rng(0).random((count, 1, 96, 96), dtype=np.float32)
    one_batch = inputs[:BATCH]
    counts = sorted({1, cores})
    print(
        f"seed keypoint model, {count} images in batches of {BATCH}, {cores} cores,"
        f" {repeats} runs of each, alternating",
        flush=True,
    )
    in_process(data, one_batch, 1)  # warm this process as the zygote is warm
    times: dict[tuple[str, int, int], list[float]] = {}
    with SandboxRunner.create() as runner:

        def sandboxed(threads: int, images: np.ndarray) -> None:
            job = Job(KIND, formats.PT2, data, batch_size=BATCH, limits=Limits(threads=threads))
            runner.predict(job, images, 1 << 20)

        paths: dict[str, Callable[[int, np.ndarray], object]] = {
            "in-process": lambda threads, images: in_process(data, images, threads),
            "sandbox": sandboxed,
        }
        for n in range(repeats):
            for threads in counts:
                for name, run in paths.items():
                    for images in (inputs, one_batch):
                        started = time.perf_counter()
                        run(threads, images)
                        took = time.perf_counter() - started
                        times.setdefault((name, threads, len(images)), []).append(took)
                    full = times[(name, threads, count)][-1]
                    print(f"  run {n + 1}: {name}, {threads} thread(s): {full:.2f} s", flush=True)
    torch.set_num_threads(1)

    print()
    print(f"{'':24}{'in-process':>12}{'sandbox':>12}{'sandbox/in-process':>20}")
    share: dict[int, float] = {}
    for threads in counts:
        own = statistics.median(times[("in-process", threads, count)])
        boxed = statistics.median(times[("sandbox", threads, count)])
        share[threads] = own / boxed
        label = f"{threads} thread(s), {count} images"
        print(f"{label:<24}{own:>11.2f}s{boxed:>11.2f}s{share[threads]:>20.2f}")
    for threads in counts:
        own = statistics.median(times[("in-process", threads, BATCH)])
        boxed = statistics.median(times[("sandbox", threads, BATCH)])
        label = f"{threads} thread(s), {BATCH} images"
        print(f"{label:<24}{own:>11.2f}s{boxed:>11.2f}s{own / boxed:>20.2f}")
    many = max(counts)
    fixed = statistics.median(times[("sandbox", many, BATCH)]) - statistics.median(
        times[("in-process", many, BATCH)]
    )
    gap = statistics.median(times[("sandbox", many, count)]) - statistics.median(
        times[("in-process", many, count)]
    )
    print(
        f"\nwith {many} thread(s) the sandbox takes {gap:.2f} s more for {count} images:"
        f" {fixed:.2f} s per job whatever its size (fork, load, pipe, verdict),"
        f" {gap - fixed:.2f} s growing with the images"
    )
    for path in ("in-process", "sandbox"):
        one = statistics.median(times[(path, 1, count)])
        every = statistics.median(times[(path, many, count)])
        print(f"{path}: {many} threads {one / every:.2f}x one thread")
    verdict = "meets" if share[many] >= GOAL else "misses"
    print(f"sandbox share of in-process with {many} threads: {share[many]:.2f} ({verdict} {GOAL})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
