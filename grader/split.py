"""The public / private split of a hidden test set: the same for every submission and every
re-grade of the same data, chosen from the data alone.

Each sample gets a key, sha256 of the dataset hash and its id (its index where a reader gives
no ids); the ``round(fraction * n)`` samples with the smallest keys are public, the rest
private. Nothing a student controls enters it, and a changed test set (a new dataset hash) is
split anew. ``split_seed`` names the split in the stored metrics.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from eval_data.dataset import Dataset


@dataclass(frozen=True)
class Split:
    public: np.ndarray
    private: np.ndarray
    #: what the split was drawn from: the dataset hash's first 16 hex digits
    seed: str


def split_seed(dataset_hash: str) -> str:
    return dataset_hash[:16]


def public_split(dataset: Dataset, fraction: float) -> Split:
    """Sorted index arrays of the public and the private part; both non-empty where the data
    has at least two samples and 0 < ``fraction`` < 1."""
    n = len(dataset)
    if not 0 < fraction < 1:
        raise ValueError(f"public fraction {fraction} is not between 0 and 1")
    seed = split_seed(dataset.dataset_hash)
    ids = dataset.ids if len(dataset.ids) == n else [str(i) for i in range(n)]
    keys = [hashlib.sha256(f"{seed}:{sample}".encode()).hexdigest() for sample in ids]
    order = sorted(range(n), key=lambda i: (keys[i], i))
    public_n = min(max(round(fraction * n), 1), n - 1) if n >= 2 else n
    public = np.sort(np.array(order[:public_n], dtype=np.int64))
    private = np.sort(np.array(order[public_n:], dtype=np.int64))
    return Split(public=public, private=private, seed=seed)
