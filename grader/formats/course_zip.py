"""The course's own submission zip (``exercise_code/`` + ``models/``), loaded as the course does.

Loading runs the student's Python code (their classes, and whatever a pickle names), so this
module only ever runs in the model process, and only the sandbox's model process grades it:
``ProcessRunner`` refuses the format unless built with ``allow_course_zip=True``. The parent
has already checked the archive's directory (``grader.formats.archive``) before it gets here.
The class a ``{"state_dict", "hparams"}`` file is rebuilt with is the kind's ``course_model``.
"""

from __future__ import annotations

import importlib
import io
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from grader.errors import GradingError

if TYPE_CHECKING:
    from grader.formats import Predict
    from grader.kinds import TaskKind

MODELS_DIR = "models"
PICKLED_MODULE = ".model"
STATE_DICT_SUFFIXES = (".p", ".pt", ".pth")


def _model_file(root: Path) -> Path:
    found = sorted(
        path
        for path in (root / MODELS_DIR).rglob("*")
        if path.is_file() and path.suffix in (PICKLED_MODULE, *STATE_DICT_SUFFIXES)
    )
    if len(found) != 1:
        names = ", ".join(str(p.relative_to(root)) for p in found[:5]) or "none"
        raise GradingError(
            "course_model_file",
            f"the zip must hold exactly one model file (*.model, *.p, *.pt or *.pth) under"
            f" {MODELS_DIR}/; found {len(found)}: {names}",
        )
    return found[0]


def _rebuild(kind: TaskKind, saved: Any) -> Any:
    if not isinstance(saved, dict) or "state_dict" not in saved:
        raise GradingError(
            "course_model_file",
            'the model file must hold a dict with "state_dict" and "hparams", as the course\'s'
            " save_model writes it (or save the whole model as models/<name>.model)",
        )
    spec = kind.course_model
    if spec is None:
        raise GradingError(
            "course_model_file",
            f"this challenge cannot rebuild a model from a state dict; save the whole model"
            f" as {MODELS_DIR}/<name>.model",
        )
    module = importlib.import_module(spec.module)
    cls = getattr(module, spec.cls, None)
    if cls is None:
        raise GradingError(
            "course_model_class",
            f"{spec.module.replace('.', '/')}.py does not define {spec.cls}",
        )
    model = spec.build(cls, saved.get("hparams"))
    model.load_state_dict(saved["state_dict"])
    return model


def load(data: bytes, device: str, threads: int, kind: TaskKind) -> tuple[Predict, int, str]:
    """Extract into a private temporary folder, import the student's code, load the model."""
    import torch

    from grader.formats import as_array, torch_weights

    del threads  # load_model has set torch's thread count already
    root = Path(tempfile.mkdtemp(prefix="submission-"))
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            archive.extractall(root)  # names were checked in the parent; extractall re-sanitises
    except (zipfile.BadZipFile, OSError) as exc:
        raise GradingError("invalid_model", f"the zip could not be extracted: {exc}") from exc
    path = _model_file(root)
    sys.path.insert(0, str(root))
    try:
        saved = torch.load(path, map_location=device, weights_only=False)
        model = saved if path.suffix == PICKLED_MODULE else _rebuild(kind, saved)
    except ModuleNotFoundError as exc:
        raise GradingError(
            "missing_module",
            f"your code imports {exc.name}, which the course environment does not provide",
        ) from exc
    if not isinstance(model, torch.nn.Module):
        raise GradingError(
            "course_model_file",
            f"{path.name} holds a {type(model).__name__}, not a torch.nn.Module",
        )
    model = model.to(device).eval()
    params = sum(int(p.numel()) for p in model.parameters())
    weights = torch_weights([*model.parameters(), *model.buffers()])

    def predict(batch: np.ndarray) -> np.ndarray:
        return as_array(model(torch.from_numpy(batch).to(device)))

    return predict, params, weights
