"""Registry of task kinds, discovered from the modules of this package.

Each module here defines one ``TaskKind`` subclass (``grader.kinds.base``) decorated with
``@register``: its input spec, output check, metrics, ranked score and pass rule. The same kind
has a dataset module in ``eval_data.kinds`` and a page module in ``leaderboard.kinds``; nothing
else names it. These modules use numpy only at import time: the web process reads them.
"""

from __future__ import annotations

from eval_data.registry import Registry
from grader.kinds.base import CourseModel, Figure, Params, TaskKind, nonfinite_message, shape_text

_registry: Registry[TaskKind] = Registry(__name__, "task kind", ValueError)
register = _registry.register
get_kind = _registry.get
kind_names = _registry.names

__all__ = [
    "CourseModel",
    "Figure",
    "Params",
    "TaskKind",
    "get_kind",
    "kind_names",
    "nonfinite_message",
    "register",
    "shape_text",
]
