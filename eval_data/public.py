"""Public sample folders: a few images a result page may show, never the hidden test set.

Convention: the public samples of a challenge whose hidden test set is ``<root>/<data_dir>`` live
in the sibling folder ``<root>/<data_dir>-public``, in the same on-disk format as the test set
(for segmentation, MSRC: ``test.txt``, ``images/``, ``targets/``); kinds with a
``public_samples`` count (``grader.kinds``) draw their predictions on them. They are
synthesised with a seed offset that no hidden set uses, so no hidden image can end up on a
page. The folder is optional: without it, a result page shows no sample predictions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from eval_data.dataset import DatasetError
from eval_data.kinds import get_kind

SUFFIX = "-public"
#: added to the hidden set's seed, so public samples and hidden images never coincide
SEED_OFFSET = 5_000_011
DEFAULT_COUNT = 4


def public_dir(hidden_dir: Path) -> Path:
    """``<root>/<data_dir>`` -> ``<root>/<data_dir>-public``."""
    hidden_dir = Path(hidden_dir)
    return hidden_dir.with_name(hidden_dir.name + SUFFIX)


def synth_public(hidden_dir: Path, task: str, seed: int, count: int = DEFAULT_COUNT) -> Path:
    """Write ``count`` synthetic public samples next to ``hidden_dir``; returns their folder."""
    folder = public_dir(hidden_dir)
    folder.mkdir(parents=True, exist_ok=True)
    get_kind(task).synth(folder, count, seed + SEED_OFFSET)
    return folder


def read_public_samples(folder: Path, task: str, limit: int = DEFAULT_COUNT) -> np.ndarray:
    """Up to ``limit`` public inputs, read by the kind's reader as the grader feeds them.

    Raises ``DatasetError`` if the folder is missing or unreadable. Public folders carry no
    manifest: nothing is scored against them.
    """
    if limit < 1:
        raise DatasetError("ask for at least one public sample")
    dataset = get_kind(task).read(Path(folder), dataset_hash="")
    return np.ascontiguousarray(dataset.inputs[:limit])
