"""Registry of dataset kinds, discovered from the modules of this package.

A module defines a subclass of ``DatasetKind`` decorated with ``@register``; adding a task kind
means adding one module here (and one in ``grader.tasks``), nothing else.
"""

from __future__ import annotations

import importlib
import pkgutil
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TypeVar

from eval_data.dataset import Dataset, DatasetError

_KINDS: dict[str, DatasetKind] = {}
_discovered = False


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


K = TypeVar("K", bound=type[DatasetKind])


def register(cls: K) -> K:
    _KINDS[cls.name] = cls()
    return cls


def _discover() -> None:
    global _discovered
    if _discovered:
        return
    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")
    _discovered = True


def get_kind(name: str) -> DatasetKind:
    _discover()
    try:
        return _KINDS[name]
    except KeyError:
        raise DatasetError(
            f"unknown task kind {name!r}; known: {', '.join(sorted(_KINDS))}"
        ) from None


def kind_names() -> list[str]:
    _discover()
    return sorted(_KINDS)
