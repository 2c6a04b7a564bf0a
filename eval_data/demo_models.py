"""Small models trained on synthetic data, exported as ``.pt2`` files, that pass or fail on purpose.

They give the grader's tests and benchmarks real programs to run without any download: a
``<kind>_pass`` model clears the default threshold on freshly synthesised test data, a
``<kind>_fail`` model has the right output shape but a score well below it. Each kind trains its
own pair (``eval_data/kinds/<kind>/demo.py``, reached through ``DatasetKind.demo_models``) on the
same generator as ``python -m eval_data synth``, with seeds no test set uses; this module holds
the training loop they share and writes the files.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from eval_data.kinds import get_kind, kind_names


@dataclass(frozen=True)
class DemoModels:
    """A kind's two demo models and an example batch to export them with."""

    passing: nn.Module
    failing: nn.Module
    example: torch.Tensor


def block(
    cin: int, cout: int, kernel: int = 3, stride: int = 1, dilation: int = 1
) -> list[nn.Module]:
    padding = 0 if stride > 1 else dilation * (kernel // 2)
    conv = nn.Conv2d(cin, cout, kernel, stride, padding, dilation, bias=False)
    return [conv, nn.BatchNorm2d(cout), nn.ReLU()]


def _batches(count: int, batch: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    order = torch.randperm(count, generator=generator)
    for start in range(0, count - batch + 1, batch):
        yield order[start : start + batch]


LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def fit(
    model: nn.Module,
    loss_fn: LossFn,
    data: tuple[torch.Tensor, torch.Tensor],
    schedule: tuple[int, int, float],
    seed: int,
    label: str,
    progress: bool,
    mirror: bool = False,
) -> None:
    """AdamW with a one-cycle schedule: reaches a good fit in a handful of CPU epochs."""
    inputs, targets = data
    epochs, batch, lr = schedule
    generator = torch.Generator().manual_seed(seed)
    steps = epochs * (len(inputs) // batch)
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    cycle = torch.optim.lr_scheduler.OneCycleLR(optimiser, lr, total_steps=steps, pct_start=0.2)
    bar = tqdm(total=steps, desc=label, disable=not (progress and sys.stderr.isatty()), leave=False)
    model.train()
    for _ in range(epochs):
        for idx in _batches(len(inputs), batch, generator):
            x, y = inputs[idx], targets[idx]
            # Mirroring is free augmentation where labels have no left and right (scenes).
            if mirror and torch.rand(1, generator=generator).item() < 0.5:
                x, y = x.flip(-1), y.flip(-1)
            loss = loss_fn(model(x), y)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            cycle.step()
            bar.update()
    bar.close()
    model.eval()


def _export(model: nn.Module, example: torch.Tensor, path: Path) -> None:
    batch = torch.export.Dim("batch", min=1)
    # The program keeps its example inputs: a slice would drag the whole training set along.
    example = example.clone()
    program = torch.export.export(model.eval(), (example,), dynamic_shapes=({0: batch},))
    torch.export.save(program, str(path))


def build_demo_models(out_dir: Path, seed: int = 0, progress: bool = False) -> dict[str, Path]:
    """Train and export two demo models per kind into ``out_dir``; return name -> ``.pt2`` path.

    Also writes ``demo_models.json`` (name -> task, expected outcome, file). Deterministic for a
    seed on a given machine and thread count.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    threads = torch.get_num_threads()
    # More than two threads rarely helps models this small, and a fixed count fixes the
    # reduction order, hence the weights.
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    try:
        return _build(out_dir, seed, progress)
    finally:
        torch.set_num_threads(threads)


def _build(out_dir: Path, seed: int, progress: bool) -> dict[str, Path]:
    start = time.monotonic()
    paths: dict[str, Path] = {}
    meta: dict[str, dict[str, str]] = {}
    for task in kind_names():
        if progress:
            print(f"training {task} demo models ...", file=sys.stderr, flush=True)
        # Seeded per kind: each kind's weights do not depend on which kinds trained before it.
        torch.manual_seed(seed)
        models = get_kind(task).demo_models(seed, progress)
        for expected, model in (("pass", models.passing), ("fail", models.failing)):
            name = f"{task}_{expected}"
            paths[name] = out_dir / f"{name}.pt2"
            _export(model, models.example, paths[name])
            meta[name] = {"task": task, "expected": expected, "file": paths[name].name}
    (out_dir / "demo_models.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    if progress:
        print(
            f"built {len(paths)} demo models in {time.monotonic() - start:.1f} s", file=sys.stderr
        )
    return paths
