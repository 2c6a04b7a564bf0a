"""The keypoints demo models: a small CNN trained on synthetic faces, and a "mean face" model with
the same architecture whose head ignores the image (right shape, failing score)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from eval_data.demo_models import DemoModels, block, fit
from eval_data.kinds.keypoints import normalise, render_faces

#: training data seeds are offset so that no small ``synth --seed`` collides with them
SEED_OFFSET = 1_000_003
TRAIN = 1600


def keypoint_net() -> nn.Sequential:
    """About 375k parameters; stride and pooling in the stem keep a training step cheap on a CPU."""
    return nn.Sequential(
        nn.Conv2d(1, 24, 5, stride=2, padding=2, bias=False),
        nn.BatchNorm2d(24),
        nn.ReLU(),
        nn.MaxPool2d(2),
        *block(24, 48),
        nn.MaxPool2d(2),
        *block(48, 64),
        nn.MaxPool2d(2),
        *block(64, 64),
        nn.Flatten(),
        nn.Linear(64 * 6 * 6, 128),
        nn.ReLU(),
        nn.Linear(128, 30),
    )


def demo_models(seed: int, progress: bool) -> DemoModels:
    images, points = render_faces(TRAIN, seed + SEED_OFFSET)
    inputs = torch.from_numpy(images[:, None].astype(np.float32) / np.float32(255))
    labels = torch.from_numpy(normalise(points))
    passing = keypoint_net()
    fit(passing, F.mse_loss, (inputs, labels), (3, 32, 3e-3), seed, "keypoints", progress)
    # Same architecture, but the head ignores the image and answers the mean face.
    failing = keypoint_net().eval()
    head = failing[-1]
    assert isinstance(head, nn.Linear)
    with torch.no_grad():
        head.weight.zero_()
        head.bias.copy_(labels.mean(dim=0))
    return DemoModels(passing, failing, inputs[:2])
