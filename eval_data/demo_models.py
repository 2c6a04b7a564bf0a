"""Small models trained on synthetic data, exported as ``.pt2`` files, that pass or fail on purpose.

They give the grader's tests and benchmarks real programs to run without any download: a
``*_pass`` model clears the default threshold on freshly synthesised test data, a ``*_fail``
model has the right output shape but a score well below it. Training data comes from the same
generators as ``python -m eval_data synth``, with seeds no test set uses.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from eval_data.kinds.keypoints import normalise, render_faces
from eval_data.kinds.segmentation import NUM_CLASSES, prepare, render_scenes

#: training data seeds are offset so that no small ``synth --seed`` collides with them
KEYPOINTS_SEED_OFFSET = 1_000_003
SEGMENTATION_SEED_OFFSET = 2_000_003
KEYPOINTS_TRAIN = 1600
SEGMENTATION_TRAIN = 160


def _block(
    cin: int, cout: int, kernel: int = 3, stride: int = 1, dilation: int = 1
) -> list[nn.Module]:
    padding = 0 if stride > 1 else dilation * (kernel // 2)
    conv = nn.Conv2d(cin, cout, kernel, stride, padding, dilation, bias=False)
    return [conv, nn.BatchNorm2d(cout), nn.ReLU()]


def keypoint_net() -> nn.Sequential:
    """About 375k parameters; stride and pooling in the stem keep a training step cheap on a CPU."""
    return nn.Sequential(
        nn.Conv2d(1, 24, 5, stride=2, padding=2, bias=False),
        nn.BatchNorm2d(24),
        nn.ReLU(),
        nn.MaxPool2d(2),
        *_block(24, 48),
        nn.MaxPool2d(2),
        *_block(48, 64),
        nn.MaxPool2d(2),
        *_block(64, 64),
        nn.Flatten(),
        nn.Linear(64 * 6 * 6, 128),
        nn.ReLU(),
        nn.Linear(128, 30),
    )


class SegmentationNet(nn.Module):
    """Classifies 4x4 patches with dilated context, then upsamples the scores to full size.

    MSRC-style targets leave region borders void, so quarter-resolution scores lose little
    accuracy, and a step costs a sixteenth of a full-resolution network.
    """

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            *_block(3, 24, kernel=4, stride=4),
            *_block(24, 32),
            *_block(32, 32, dilation=2),
            *_block(32, 32, dilation=4),
            nn.Conv2d(32, NUM_CLASSES, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(self.body(x), scale_factor=4.0, mode="bilinear", align_corners=False)


def constant_segmentation(class_id: int) -> nn.Module:
    """A valid model that scores every pixel as ``class_id``, whatever the image."""
    model = nn.Conv2d(3, NUM_CLASSES, 1)
    bias = torch.zeros(NUM_CLASSES)
    bias[class_id] = 1.0
    with torch.no_grad():
        model.weight.zero_()
        model.bias = nn.Parameter(bias)
    return model


def _batches(count: int, batch: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    order = torch.randperm(count, generator=generator)
    for start in range(0, count - batch + 1, batch):
        yield order[start : start + batch]


LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _fit(
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


def _keypoint_models(seed: int, progress: bool) -> tuple[nn.Module, nn.Module, torch.Tensor]:
    images, points = render_faces(KEYPOINTS_TRAIN, seed + KEYPOINTS_SEED_OFFSET)
    inputs = torch.from_numpy(images[:, None].astype(np.float32) / np.float32(255))
    labels = torch.from_numpy(normalise(points))
    passing = keypoint_net()
    _fit(passing, F.mse_loss, (inputs, labels), (3, 32, 3e-3), seed, "keypoints", progress)
    # Same architecture, but the head ignores the image and answers the mean face.
    failing = keypoint_net().eval()
    head = failing[-1]
    assert isinstance(head, nn.Linear)
    with torch.no_grad():
        head.weight.zero_()
        head.bias.copy_(labels.mean(dim=0))
    return passing, failing, inputs[:2]


def _segmentation_models(seed: int, progress: bool) -> tuple[nn.Module, nn.Module, torch.Tensor]:
    inputs_np, labels_np, _ = prepare(
        *render_scenes(SEGMENTATION_TRAIN, seed + SEGMENTATION_SEED_OFFSET)
    )
    inputs = torch.from_numpy(inputs_np)
    # Train at the network's own quarter resolution: the centre pixel of each 4x4 patch.
    labels = torch.from_numpy(np.ascontiguousarray(labels_np[:, 2::4, 2::4]))
    passing = SegmentationNet()
    loss = nn.CrossEntropyLoss(ignore_index=-1)
    data = (inputs, labels)
    _fit(passing.body, loss, data, (4, 8, 1e-2), seed, "segmentation", progress, mirror=True)
    counts = np.bincount(labels_np[labels_np >= 0], minlength=NUM_CLASSES)
    failing = constant_segmentation(int(counts.argmax()))
    return passing, failing, inputs[:2]


def build_demo_models(out_dir: Path, seed: int = 0, progress: bool = False) -> dict[str, Path]:
    """Train and export the four demo models into ``out_dir``; return name -> ``.pt2`` path.

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
    for task, make in (("keypoints", _keypoint_models), ("segmentation", _segmentation_models)):
        if progress:
            print(f"training {task} demo models ...", file=sys.stderr, flush=True)
        passing, failing, example = make(seed, progress)
        for expected, model in (("pass", passing), ("fail", failing)):
            name = f"{task}_{expected}"
            paths[name] = out_dir / f"{name}.pt2"
            _export(model, example, paths[name])
            meta[name] = {"task": task, "expected": expected, "file": paths[name].name}
    (out_dir / "demo_models.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    if progress:
        print(
            f"built {len(paths)} demo models in {time.monotonic() - start:.1f} s", file=sys.stderr
        )
    return paths
