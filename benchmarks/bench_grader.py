"""What grading costs on top of running the model: ``python -m benchmarks.bench_grader [--quick]``.

The course's seed-size keypoint model (2,750,819 parameters) is exported to ``.pt2`` with a
dynamic batch, a synthetic keypoints test set of 1,000 images (200 with ``--quick``) is written
in the course's CSV format, and one run times:

a. in-process inference of the loaded ``.pt2`` on every image (batches and threads as the grader
   uses them),
b. the full ``grader.evaluate.evaluate`` path as a worker runs it, with a warm
   ``SandboxRunner``: upload checks, dataset read and verification, a fresh sandboxed model
   process (load, predict), validation and metrics,
c. ``python -m grader evaluate --json`` as a subprocess (sandboxed, so it also pays for starting
   the sandbox and importing torch once),
d. the same ``evaluate`` path with a plain ``ProcessRunner`` (a fresh Python per job), for
   comparison.

It prints seconds for each and the ratios to (a), and checks all of them agree on the MSE.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import eval_data
from benchmarks.reference_models import KEYPOINT_SEED_PARAMS, count_params, keypoint_seed_model
from benchmarks.subject import FIGURE, KIND
from eval_data.manifest import write_manifest
from grader.evaluate import Evaluation, evaluate
from grader.kinds.keypoints import keypoint_metrics
from grader.limits import Limits
from grader.runners import Runner
from grader.runners.process import ProcessRunner
from grader.sandbox import SandboxRunner

ROOT = Path(__file__).resolve().parents[1]
BATCH_SIZE = 32  # the grader's default
SEED = 2024


def log(message: str) -> None:
    print(message, flush=True)


def build_model(path: Path) -> None:
    model = keypoint_seed_model().eval()
    params = count_params(model)
    assert params == KEYPOINT_SEED_PARAMS, params
    batch = torch.export.Dim("batch")
    example = torch.rand(2, 1, 96, 96)
    program = torch.export.export(model, (example,), dynamic_shapes=({0: batch},))
    torch.export.save(program, path)
    log(f"  seed model: {params:,} parameters, {path.stat().st_size / 1e6:.1f} MB as .pt2")


def time_in_process(model_path: Path, inputs: np.ndarray, threads: int) -> tuple[float, np.ndarray]:
    """Seconds to predict every input with the loaded program, and the predictions."""
    torch.set_num_threads(threads)
    module = torch.export.load(model_path).module()
    outputs = []
    with torch.inference_mode():
        module(torch.from_numpy(inputs[:BATCH_SIZE]))  # warm-up, as a loaded model would be
        started = time.perf_counter()
        for start in range(0, len(inputs), BATCH_SIZE):
            outputs.append(module(torch.from_numpy(inputs[start : start + BATCH_SIZE])))
        seconds = time.perf_counter() - started
    return seconds, torch.cat(outputs).reshape(len(inputs), 30).numpy()


def time_evaluate(
    model_path: Path, data_dir: Path, runner: Runner
) -> tuple[float, Evaluation, dict[str, float]]:
    """Seconds for one ``evaluate`` call, the result, and how the time splits."""
    marks: dict[str, float] = {}

    def on_loaded(_: eval_data.Dataset) -> None:
        marks["loaded"] = time.perf_counter()

    def on_progress(done: int, total: int) -> None:
        marks.setdefault("first_batch", time.perf_counter())

    started = time.perf_counter()
    result = evaluate(
        model_path,
        KIND,
        data_dir,
        runner,
        batch_size=BATCH_SIZE,
        progress=on_progress,
        on_loaded=on_loaded,
    )
    ended = time.perf_counter()
    split = {
        "loaded": marks["loaded"] - started,
        "first_batch": marks["first_batch"] - marks["loaded"],
        "rest": ended - marks["first_batch"],
    }
    return ended - started, result, split


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_grader")
    parser.add_argument("--quick", action="store_true", help="200 images instead of 1,000")
    args = parser.parse_args(argv)
    count = 200 if args.quick else 1000
    threads = Limits().threads

    with tempfile.TemporaryDirectory(prefix="bench-grader-") as tmp:
        work = Path(tmp)
        model_path, data_dir = work / "seed.pt2", work / KIND

        log("building the course's seed keypoint model and exporting it to .pt2 ...")
        started = time.perf_counter()
        build_model(model_path)
        log(f"  done in {time.perf_counter() - started:.1f} s")

        log(f"writing a synthetic keypoints test set of {count:,} images ...")
        started = time.perf_counter()
        eval_data.get_kind(KIND).synth(data_dir, count, SEED)
        write_manifest(data_dir, KIND)
        dataset = eval_data.load(data_dir, KIND)
        assert len(dataset) == count, len(dataset)
        log(f"  done in {time.perf_counter() - started:.1f} s")

        log(f"(a) in-process inference, batch {BATCH_SIZE}, {threads} thread(s) ...")
        seconds_a, outputs = time_in_process(model_path, dataset.inputs, threads)
        mse_a = keypoint_metrics(outputs, dataset.labels)[FIGURE]
        log(f"  {seconds_a:.2f} s")

        log("(b) grader.evaluate.evaluate with a warm SandboxRunner ...")
        started = time.perf_counter()
        sandbox = SandboxRunner.create()
        log(f"  sandbox started in {time.perf_counter() - started:.2f} s (once per worker)")
        try:
            seconds_b, result, marks = time_evaluate(model_path, data_dir, sandbox)
        finally:
            sandbox.close()
        log(f"  {seconds_b:.2f} s")
        log(f"    upload checks, dataset read and verified  {marks['loaded']:6.2f} s")
        log(f"    model process: start, load, first batch  {marks['first_batch']:6.2f} s")
        log(f"    other batches, validation, metrics  {marks['rest']:6.2f} s")

        log("(d) grader.evaluate.evaluate with a ProcessRunner ...")
        seconds_d, result_d, _ = time_evaluate(model_path, data_dir, ProcessRunner())
        log(f"  {seconds_d:.2f} s")

        log("(c) python -m grader evaluate --json ...")
        command = [
            sys.executable, "-m", "grader", "evaluate", str(model_path),
            "--challenge", KIND, "--data", str(data_dir), "--json",
            "--batch-size", str(BATCH_SIZE),
        ]  # fmt: skip
        started = time.perf_counter()
        completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
        seconds_c = time.perf_counter() - started
        if completed.returncode != 0:
            log(f"  the command failed ({completed.returncode}):\n{completed.stderr}")
            return 1
        mse_c = json.loads(completed.stdout)[FIGURE]
        log(f"  {seconds_c:.2f} s")

    for name, mse in (
        ("evaluate (sandbox)", result.metrics[FIGURE]),
        ("evaluate (process)", result_d.metrics[FIGURE]),
        ("command line", mse_c),
    ):
        if abs(mse - mse_a) > 1e-6:
            log(f"MISMATCH: {name} MSE {mse!r} vs in-process {mse_a!r}")
            return 1

    log("")
    log(f"keypoints, seed model ({KEYPOINT_SEED_PARAMS:,} parameters), {count:,} images, CPU")
    log(f"  (a) in-process inference     {seconds_a:7.2f} s   {count / seconds_a:7.0f} img/s")
    log(f"  (b) evaluate(), warm sandbox {seconds_b:7.2f} s   b/a = {seconds_b / seconds_a:.2f}")
    log(f"  (c) python -m grader CLI     {seconds_c:7.2f} s   c/a = {seconds_c / seconds_a:.2f}")
    log(f"  (d) evaluate(), new process  {seconds_d:7.2f} s   d/a = {seconds_d / seconds_a:.2f}")
    log(f"  grading overhead in a worker (b - a): {seconds_b - seconds_a:+.2f} s")
    log(f"  all MSEs agree to 1e-6 ({mse_a:.6f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
