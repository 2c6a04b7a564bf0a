"""What the benchmarks measure, named in one place: the kind whose path they time (its seed
model, synthetic set and figure), and the set sizes the GPU check grades for every kind.

The benchmarks compare runners, queues and stacks, not kinds, so one kind serves them all; the
structure test lets no other benchmark module name a kind or a kind's own figure."""

from __future__ import annotations

#: the kind every benchmark grades
KIND = "keypoints"
#: the kind's figure the grader benchmark compares between runners (it must agree to 1e-6)
FIGURE = "mse"
#: hidden-set sizes per kind for the GPU check (full, --quick)
GPU_SET_SIZES = {"keypoints": (256, 32), "segmentation": (16, 4), "classification": (128, 16)}
#: hidden-set sizes per kind for the copy thresholds' figures (benchmarks/bench_copies.py)
COPIES_SET_SIZES = {"keypoints": 200, "segmentation": 24, "classification": 500}
