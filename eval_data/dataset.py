"""The in-memory form of a test set, shared by every task kind."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


class DatasetError(Exception):
    """A test set is missing, changed or malformed: an operator's problem, never a student's."""


@dataclass(frozen=True)
class Dataset:
    """Inputs the model sees and labels only the trusted grader sees.

    ``inputs`` is float32 with the batch first; ``labels`` is whatever the kind's metric takes.
    ``classes`` names the class indices where the labels are classes read from the layout
    (classification's sorted folder names). ``report`` holds reader facts worth showing staff
    (rows dropped, unknown label colours, empty class folders, ...).
    """

    task: str
    inputs: np.ndarray
    labels: np.ndarray
    dataset_hash: str
    ids: list[str] = field(default_factory=list)
    report: dict[str, Any] = field(default_factory=dict)
    classes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.inputs.shape[0])

    def subset(self, indices: np.ndarray) -> Dataset:
        """The samples at ``indices``, as a dataset of their own (a part of a split)."""
        return Dataset(
            task=self.task,
            inputs=self.inputs[indices],
            labels=self.labels[indices],
            dataset_hash=self.dataset_hash,
            ids=[self.ids[i] for i in indices] if self.ids else [],
            report=self.report,
            classes=self.classes,
        )
