"""The classification demo models: a small CNN trained on synthetic pictures, and a model with
the same architecture whose head ignores the image and always answers one class (right shape,
failing score)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from eval_data.demo_models import DemoModels, block, fit
from eval_data.kinds.classification import CLASS_NAMES, render_pictures

#: training data seeds are offset so that no small ``synth --seed`` collides with them
SEED_OFFSET = 3_000_017
TRAIN = 3000
NUM_CLASSES = len(CLASS_NAMES)


def classification_net() -> nn.Sequential:
    """About 40k parameters; three poolings bring 32x32 down to 4x4 before the head."""
    return nn.Sequential(
        *block(3, 16),
        nn.MaxPool2d(2),
        *block(16, 32),
        nn.MaxPool2d(2),
        *block(32, 48),
        nn.MaxPool2d(2),
        *block(48, 48),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(48, NUM_CLASSES),
    )


def demo_models(seed: int, progress: bool) -> DemoModels:
    images, labels_np = render_pictures(TRAIN, seed + SEED_OFFSET)
    # What the reader feeds a model: (N, 3, H, W) float32 in [0, 1].
    inputs = torch.from_numpy(images.transpose(0, 3, 1, 2).astype(np.float32) / np.float32(255))
    labels = torch.from_numpy(labels_np)
    passing = classification_net()
    loss = nn.CrossEntropyLoss()
    fit(passing, loss, (inputs, labels), (6, 32, 1e-2), seed, "classification", progress)
    # Same architecture, but the head ignores the image and always answers class 0.
    failing = classification_net().eval()
    head = failing[-1]
    assert isinstance(head, nn.Linear)
    with torch.no_grad():
        head.weight.zero_()
        head.bias.zero_()
        head.bias[0] = 1.0
    return DemoModels(passing, failing, inputs[:2])
