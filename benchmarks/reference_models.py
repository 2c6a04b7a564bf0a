"""The course's reference models (GRADING_SPEC, "Reference models"), built with random weights.

Shared by the benchmarks: ``keypoint_seed_model`` is the course's worked keypoint example
(2,750,819 parameters), ``keypoint_slim_model`` its slimmer variant (430,451), and
``segmentation_standin`` a MobileNetV2 encoder with a small upsampling decoder, the kind of
model segmentation students submit. Nothing is downloaded: random initialisation is enough to
measure speed.
"""

from __future__ import annotations

import torch
from torch import nn

KEYPOINT_SEED_PARAMS = 2_750_819
KEYPOINT_SLIM_PARAMS = 430_451
SEGMENTATION_CLASSES = 23
SEGMENTATION_SIZE = 240


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _keypoint_trunk() -> list[nn.Module]:
    return [
        nn.Conv2d(1, 32, 3, padding=2),
        nn.PReLU(),
        nn.MaxPool2d(3),
        nn.Conv2d(32, 64, 3, padding=2),
        nn.PReLU(),
        nn.MaxPool2d(3, stride=2),
        nn.Conv2d(64, 64, 3, padding=1),
        nn.PReLU(),
        nn.MaxPool2d(2, stride=2),
        nn.Conv2d(64, 128, 2, padding=1),
        nn.PReLU(),
    ]


def _keypoint_head(features: int) -> list[nn.Module]:
    return [
        nn.Flatten(),
        nn.Linear(features, 256),
        nn.Dropout(0.1),
        nn.PReLU(),
        nn.Linear(256, 30),
    ]


def keypoint_seed_model() -> nn.Sequential:
    """The course's keypoint example: ``(N, 1, 96, 96)`` to ``(N, 30)``, 2,750,819 parameters."""
    model = nn.Sequential(*_keypoint_trunk(), *_keypoint_head(128 * 9 * 9))
    assert count_params(model) == KEYPOINT_SEED_PARAMS, count_params(model)
    return model


def keypoint_slim_model() -> nn.Sequential:
    """The slimmer variant: a 1x1 conv to 16 channels before ``Flatten``; 430,451 parameters."""
    model = nn.Sequential(*_keypoint_trunk(), nn.Conv2d(128, 16, 1), *_keypoint_head(16 * 9 * 9))
    assert count_params(model) == KEYPOINT_SLIM_PARAMS, count_params(model)
    return model


class SegmentationStandin(nn.Module):
    """MobileNetV2 features (stride 32) and an upsampling decoder to ``(N, 23, 240, 240)``."""

    def __init__(self) -> None:
        super().__init__()
        from torchvision.models import mobilenet_v2

        self.encoder = mobilenet_v2(weights=None).features  # (N, 1280, 8, 8) for 240 x 240
        self.decoder = nn.Sequential(
            nn.Conv2d(1280, 128, 1),
            nn.ReLU(),
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
            nn.Conv2d(128, 64, 3, padding=1),
            nn.ReLU(),
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
            nn.Conv2d(64, 32, 3, padding=1),
            nn.ReLU(),
            nn.Upsample(
                size=(SEGMENTATION_SIZE, SEGMENTATION_SIZE), mode="bilinear", align_corners=False
            ),
            nn.Conv2d(32, SEGMENTATION_CLASSES, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


def segmentation_standin() -> SegmentationStandin:
    """A fair stand-in for a student's segmentation model (about 2.5 M parameters)."""
    return SegmentationStandin()


def export_pt2(model: nn.Module, example: torch.Tensor, path: str) -> None:
    """Export ``model`` in eval mode with a dynamic batch dimension, as students are told to."""
    model.eval()
    batch = torch.export.Dim("batch")
    program = torch.export.export(model, (example,), dynamic_shapes=({0: batch},))
    torch.export.save(program, path)
