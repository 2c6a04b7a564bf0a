"""Registry of dataset kinds, discovered from the packages of this one.

Each kind is a package here: its ``__init__`` defines a ``DatasetKind`` subclass decorated with
``@register`` (the on-disk format's reader, the files a manifest covers, the synthetic
generator), and its ``demo`` module trains the kind's demo models (torch, imported only when
they are built). The same kind has a grading module in ``grader.kinds`` and a page module in
``leaderboard.kinds``; adding a kind means one package here and one module in each of those.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING

from eval_data.dataset import Dataset, DatasetError
from eval_data.registry import Registry

if TYPE_CHECKING:
    from eval_data.demo_models import DemoModels


class DatasetKind(ABC):
    """How one task's hidden test set is laid out on disk, read and synthesised."""

    #: the kind's name, shared with ``grader.kinds`` (``keypoints``, ``segmentation``, ...)
    name: str

    @abstractmethod
    def data_files(self, root: Path) -> list[str]:
        """Relative paths (POSIX) of every file that makes up the dataset under ``root``.

        A path ending in ``/`` names a folder whose presence matters even when it is empty
        (classification: a class with no image still has an index). Raises ``DatasetError``
        naming what is missing when the layout is wrong.
        """

    @abstractmethod
    def read(self, root: Path, dataset_hash: str) -> Dataset:
        """Read the dataset (already verified against its manifest) into arrays."""

    @abstractmethod
    def synth(self, root: Path, count: int, seed: int) -> None:
        """Write a deterministic synthetic dataset in the course's format to ``root``."""

    @abstractmethod
    def demo_models(self, seed: int, progress: bool) -> DemoModels:
        """Train a model that passes and one that fails (imports torch)."""


_registry: Registry[DatasetKind] = Registry(__name__, "task kind", DatasetError)
register = _registry.register
get_kind = _registry.get
kind_names = _registry.names
