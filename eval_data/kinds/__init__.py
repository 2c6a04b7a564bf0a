"""Registry of dataset kinds, discovered from the modules of this package.

A module defines a subclass of ``DatasetKind`` decorated with ``@register``; adding a task kind
means adding one module here (and one in ``grader.tasks``), nothing else.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

from eval_data.dataset import Dataset, DatasetError
from eval_data.registry import Registry


class DatasetKind(ABC):
    """How one task's hidden test set is laid out on disk, read and synthesised."""

    #: the task name shared with ``grader.tasks`` (``keypoints``, ``segmentation``)
    name: str

    @abstractmethod
    def data_files(self, root: Path) -> list[str]:
        """Relative paths (POSIX) of every file that makes up the dataset under ``root``.

        Raises ``DatasetError`` naming what is missing when the layout is wrong.
        """

    @abstractmethod
    def read(self, root: Path, dataset_hash: str) -> Dataset:
        """Read the dataset (already verified against its manifest) into arrays."""

    @abstractmethod
    def synth(self, root: Path, count: int, seed: int) -> None:
        """Write a deterministic synthetic dataset in the course's format to ``root``."""


_registry: Registry[DatasetKind] = Registry(__name__, "task kind", DatasetError)
register = _registry.register
get_kind = _registry.get
kind_names = _registry.names
