"""TorchScript files (deprecated upstream, accepted where a course still uses them): loaded with
``torch.jit.load`` in the model process. Their ops can read and write files, which is why only
the sandbox runs them on a grading host."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import numpy as np

from grader.errors import GradingError, safe_message

if TYPE_CHECKING:
    from grader.formats import Predict
    from grader.kinds import TaskKind


def load(data: bytes, device: str, threads: int, kind: TaskKind) -> tuple[Predict, int, str]:
    import torch

    from grader.formats import as_array, torch_weights

    try:
        module = torch.jit.load(io.BytesIO(data), map_location=device)
    except Exception as exc:
        raise GradingError(
            "invalid_model", f"this is not a valid TorchScript file: {safe_message(exc)}"
        ) from exc
    module.eval()
    params = sum(int(p.numel()) for p in module.parameters())
    weights = torch_weights([*module.parameters(), *module.buffers()])

    def predict(batch: np.ndarray) -> np.ndarray:
        return as_array(module(torch.from_numpy(batch).to(device)))

    return predict, params, weights
