"""Similarity figures behind the copy thresholds: per kind, how alike are a model and

* the same weights in another format (TorchScript, ONNX): the weights fingerprint must agree;
* a copy whose every weight was nudged by 0.1 % (× (1 + 0.001·noise), noise ~ N(0, 1)),
  re-exported: must reach the kind's ``near_threshold``;
* the demo's failing model, and the passing model trained with another seed (the same
  architecture, independently trained): must stay below it.

Runs the real grader (``grader.evaluate``, in a plain child process: the same model-process
code as the sandbox) on synthetic hidden sets, and prints one table row per pair::

    .venv/bin/python benchmarks/bench_copies.py [--kinds keypoints,...] [--count N]
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import eval_data  # noqa: E402
from benchmarks.subject import COPIES_SET_SIZES  # noqa: E402
from eval_data.manifest import write_manifest  # noqa: E402
from grader.evaluate import evaluate  # noqa: E402
from grader.fingerprints import band_keys, sketch_from_bytes  # noqa: E402
from grader.kinds import get_kind, kind_names  # noqa: E402
from grader.runners import make_runner  # noqa: E402


def nudged(model: torch.nn.Module, seed: int, scale: float = 0.001) -> torch.nn.Module:
    """Every floating-point weight × (1 + scale · noise)."""
    out = copy.deepcopy(model).eval()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for tensor in [*out.parameters(), *out.buffers()]:
            if tensor.is_floating_point():
                noise = torch.randn(tensor.shape, generator=generator)
                tensor.mul_(1 + scale * noise)
    return out


def export_pt2(model: torch.nn.Module, example: torch.Tensor, path: Path) -> Path:
    batch = torch.export.Dim("batch", min=1)
    program = torch.export.export(model.eval(), (example.clone(),), dynamic_shapes=({0: batch},))
    torch.export.save(program, str(path))
    return path


def export_script(model: torch.nn.Module, path: Path) -> Path:
    torch.jit.save(torch.jit.script(model.eval()), str(path))
    return path


def export_onnx(model: torch.nn.Module, example: torch.Tensor, path: Path) -> Path:
    # The exporter that keeps the weights as they are (no batch norm folded into convolutions).
    torch.onnx.export(
        model.eval(),
        (example.clone(),),
        str(path),
        input_names=["x"],
        dynamic_axes={"x": {0: "n"}},
        dynamo=False,
        do_constant_folding=False,
    )
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kinds", default=",".join(kind_names()))
    parser.add_argument("--count", type=int, default=0, help="hidden images (default per kind)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    runner = make_runner(sandboxed=False)
    print("| kind | pair | same weights | same predictions | similarity | near (≥ threshold) |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="bench-copies-") as tmp:
        root = Path(tmp)
        for task in args.kinds.split(","):
            kind = get_kind(task)
            data = root / task / "hidden"
            data.mkdir(parents=True)
            eval_data.get_kind(task).synth(data, args.count or COPIES_SET_SIZES[task], 7)
            write_manifest(data, task)
            started = time.monotonic()
            torch.manual_seed(0)
            first = eval_data.get_kind(task).demo_models(0, False)
            torch.manual_seed(1)
            second = eval_data.get_kind(task).demo_models(1, False)
            trained = time.monotonic() - started
            folder = root / task
            files = {
                "original (.pt2)": export_pt2(first.passing, first.example, folder / "a.pt2"),
                "TorchScript": export_script(first.passing, folder / "a.pt"),
                "ONNX": export_onnx(first.passing, first.example, folder / "a.onnx"),
                "nudged 0.1 %": export_pt2(
                    nudged(first.passing, 5), first.example, folder / "nudged.pt2"
                ),
                "demo failing model": export_pt2(first.failing, first.example, folder / "f.pt2"),
                "another seed": export_pt2(second.passing, second.example, folder / "b.pt2"),
            }
            results = {
                name: evaluate(
                    path,
                    task,
                    data,
                    runner,
                    allowed_formats=("pt2", "torchscript", "onnx"),
                )
                for name, path in files.items()
            }
            threshold = kind.near_threshold
            base = results["original (.pt2)"]
            base_sketch = sketch_from_bytes(kind, base.predictions_sketch)
            base_keys = set(band_keys(kind, base_sketch, threshold))
            for name, result in results.items():
                if name == "original (.pt2)":
                    continue
                sketch = sketch_from_bytes(kind, result.predictions_sketch)
                similarity = kind.copy_similarity(base_sketch, sketch)
                shared = len(base_keys & set(band_keys(kind, sketch, threshold)))
                print(
                    f"| {task} | {name} (score {result.score:.4g} vs {base.score:.4g}) |"
                    f" {result.weights_fingerprint == base.weights_fingerprint} |"
                    f" {result.predictions_fingerprint == base.predictions_fingerprint} |"
                    f" {similarity:.4f} | {similarity >= threshold} (threshold {threshold},"
                    f" {shared} of 16 buckets shared) |",
                    flush=True,
                )
            print(f"<!-- {task}: trained 2 seeds in {trained:.0f} s -->", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
