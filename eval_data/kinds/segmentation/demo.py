"""The segmentation demo models: a small patch classifier with dilated context trained on
synthetic scenes, and a model that answers the most common class everywhere (right shape,
failing score)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from eval_data.demo_models import DemoModels, block, fit
from eval_data.kinds.segmentation import NUM_CLASSES, prepare, render_scenes

#: training data seeds are offset so that no small ``synth --seed`` collides with them
SEED_OFFSET = 2_000_003
TRAIN = 160


class SegmentationNet(nn.Module):
    """Classifies 4x4 patches with dilated context, then upsamples the scores to full size.

    MSRC-style targets leave region borders void, so quarter-resolution scores lose little
    accuracy, and a step costs a sixteenth of a full-resolution network.
    """

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            *block(3, 24, kernel=4, stride=4),
            *block(24, 32),
            *block(32, 32, dilation=2),
            *block(32, 32, dilation=4),
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


def demo_models(seed: int, progress: bool) -> DemoModels:
    inputs_np, labels_np, _ = prepare(*render_scenes(TRAIN, seed + SEED_OFFSET))
    inputs = torch.from_numpy(inputs_np)
    # Train at the network's own quarter resolution: the centre pixel of each 4x4 patch.
    labels = torch.from_numpy(np.ascontiguousarray(labels_np[:, 2::4, 2::4]))
    passing = SegmentationNet()
    loss = nn.CrossEntropyLoss(ignore_index=-1)
    data = (inputs, labels)
    fit(passing.body, loss, data, (4, 8, 1e-2), seed, "segmentation", progress, mirror=True)
    counts = np.bincount(labels_np[labels_np >= 0], minlength=NUM_CLASSES)
    failing = constant_segmentation(int(counts.argmax()))
    return DemoModels(passing, failing, inputs[:2])
