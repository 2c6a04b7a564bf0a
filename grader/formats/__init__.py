"""Model file formats: told apart by content (here), checked before anything loads them, and
loaded in the model process. Each format has one module of this package:

* ``pt2``: a ``torch.export`` archive, a zip holding ``<name>/archive_format`` = ``pt2``;
  rebuilt from its checked members before it is loaded.
* ``torchscript``: a zip holding ``<name>/code/`` and ``<name>/constants.pkl``.
* ``onnx``: an ONNX protobuf (first field: ``ir_version``), checked by parsing it.
* ``course_zip``: the course's submission zip, with ``models/`` and ``exercise_code/``.

``upload`` holds the checks every upload passes (size, format allowed, the zip checks of
``archive``, the format's own static check); ``load_model`` loads checked bytes in the model
process. Nothing here imports torch at import time: the web process checks uploads with it.
"""

from __future__ import annotations

import importlib
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from grader.errors import GradingError
from grader.i18n import gettext_noop

if TYPE_CHECKING:
    from grader.kinds import TaskKind

#: a loaded model: one input batch in, one raw output batch out
Predict = Callable[[np.ndarray], np.ndarray]


class Loaded(NamedTuple):
    """A model loaded in the model process."""

    predict: Predict
    #: its parameter count
    params: int
    #: ``grader.fingerprints`` of its weights ("" if it holds no floating-point tensor)
    weights: str


PT2 = "pt2"
TORCHSCRIPT = "torchscript"
ONNX = "onnx"
COURSE_ZIP = "course_zip"

FORMATS = {
    PT2: "torch.export program (.pt2)",
    TORCHSCRIPT: "TorchScript (.pt, deprecated upstream)",
    ONNX: "ONNX (.onnx)",
    COURSE_ZIP: "course submission zip (models/ + exercise_code/)",
}
DEFAULT_FORMATS = (PT2, ONNX, TORCHSCRIPT)

HOW_TO_EXPORT = gettext_noop(
    "export your model with torch.export.save(torch.export.export(model.eval(), (example,),"
    " dynamic_shapes=...), 'model.pt2')"
)


def _zip_format(path: Path) -> str | None:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            tops = {name.split("/", 1)[0] for name in names}
            if "models" in tops and "exercise_code" in tops:
                return COURSE_ZIP
            for name in names:
                parts = name.split("/")
                if len(parts) == 2 and parts[1] == "archive_format":
                    with archive.open(name) as member:
                        marker = member.read(16)
                    if marker.strip() == b"pt2":
                        return PT2
            if any(n.endswith("/constants.pkl") for n in names) and any(
                "/code/" in n for n in names
            ):
                return TORCHSCRIPT
            if any(n.endswith("/data.pkl") for n in names):
                raise GradingError(
                    "state_dict_only",
                    gettext_noop(
                        "this file was written by torch.save (a state_dict or a pickled module),"
                        " which the grader does not load: pickles can run code, and weights"
                        " alone do not say how to build the model; %(how)s"
                    )
                    % {"how": HOW_TO_EXPORT},
                )
    except (zipfile.BadZipFile, OSError):
        return None
    return None


def _looks_like_onnx(path: Path) -> bool:
    with path.open("rb") as fh:
        head = fh.read(2)
    # ModelProto starts with field 1 (ir_version, varint): tag byte 0x08.
    if head[:1] != b"\x08":
        return False
    import onnx  # parsing protobuf runs no model code

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:
        return False
    return len(model.graph.node) > 0


def detect_format(path: Path) -> str:
    """Return the format of the model file at ``path`` or raise a ``GradingError``."""
    path = Path(path)
    if path.stat().st_size == 0:
        raise GradingError("empty_file", gettext_noop("the uploaded file is empty"))
    if zipfile.is_zipfile(path):
        fmt = _zip_format(path)
        if fmt:
            return fmt
        raise GradingError(
            "unknown_format",
            gettext_noop(
                "this zip file is neither a .pt2 program, a TorchScript file nor the course's"
                " submission zip (models/ and exercise_code/); %(how)s"
            )
            % {"how": HOW_TO_EXPORT},
        )
    if _looks_like_onnx(path):
        return ONNX
    with path.open("rb") as fh:
        head = fh.read(2)
    if head[:1] == b"\x80":
        raise GradingError(
            "legacy_pickle",
            gettext_noop(
                "this file is a plain Python pickle (an old torch.save format); pickles can run"
                " code and are not accepted; %(how)s"
            )
            % {"how": HOW_TO_EXPORT},
        )
    raise GradingError(
        "unknown_format",
        gettext_noop(
            "this is not a model file the grader recognises (.pt2, ONNX or TorchScript); %(how)s"
        )
        % {"how": HOW_TO_EXPORT},
    )


def as_array(output: object) -> np.ndarray:
    """A torch model's output as a float32 array: one tensor, or a tuple or list holding one."""
    import torch

    if isinstance(output, tuple | list) and len(output) == 1:
        output = output[0]
    if not isinstance(output, torch.Tensor):
        raise GradingError(
            "output_type",
            f"your model returned a {type(output).__name__}, but the challenge needs a single"
            " tensor",
        )
    return output.detach().float().cpu().numpy()


def torch_weights(tensors: Any) -> str:
    """The weights fingerprint of torch tensors (parameters and buffers), floating-point ones
    only: an integer buffer such as batch norm's step counter is bookkeeping, not a weight."""
    import torch

    from grader.fingerprints import tensor_digest, weights_fingerprint

    digests = []
    for tensor in tensors:
        if not isinstance(tensor, torch.Tensor) or not tensor.is_floating_point():
            continue
        data = tensor.detach().cpu().contiguous()
        if data.dtype == torch.bfloat16:  # numpy has no bfloat16: its raw 16 bits
            raw = data.view(torch.int16).numpy().tobytes()
        else:
            raw = data.numpy().tobytes()
        digests.append(tensor_digest(str(data.dtype).removeprefix("torch."), data.shape, raw))
    return weights_fingerprint(digests)


def load_model(fmt: str, data: bytes, device: str, threads: int, kind: TaskKind) -> Loaded:
    """Load checked model bytes in the model process: a batch predictor, its parameter count
    and its weights fingerprint.

    ``kind`` matters only to the course zip, whose state-dict form is rebuilt with the student's
    class for that kind.
    """
    if fmt not in FORMATS:
        raise GradingError("unknown_format", f"the grader cannot run {fmt!r} models")
    if fmt != ONNX:
        import torch

        torch.set_num_threads(threads)
        torch.manual_seed(0)
        torch.use_deterministic_algorithms(True, warn_only=True)
    module = importlib.import_module(f"grader.formats.{fmt}")
    predict, params, weights = module.load(data, device, threads, kind)
    return Loaded(predict, params, weights)
