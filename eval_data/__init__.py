"""Hidden test sets in the course's on-disk formats.

``load(root, task)`` verifies the folder's manifest and reads it into arrays; each task kind's
reader, file list and synthetic generator live together in one module of ``eval_data.kinds``.
No Django here, and torch only where a caller asks for it.
"""

from __future__ import annotations

from eval_data.dataset import Dataset, DatasetError
from eval_data.kinds import get_kind, kind_names
from eval_data.manifest import load

__all__ = ["Dataset", "DatasetError", "get_kind", "kind_names", "load"]
