"""ONNX models: the static check (no tensor stored outside the file) and the loader, which runs
them with onnxruntime in the model process. Parsing the protobuf runs no model code."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from grader.errors import GradingError, safe_message
from grader.i18n import gettext_noop

if TYPE_CHECKING:
    from grader.formats import Predict
    from grader.kinds import TaskKind


def _tensors(model: Any) -> Iterator[Any]:
    """Every tensor of an ONNX model: initializers and node attributes, in the main graph, its
    subgraphs and its functions."""
    graphs = [model.graph]
    nodes = [node for function in model.functions for node in function.node]
    while graphs or nodes:
        if graphs:
            current = graphs.pop()
            yield from current.initializer
            for sparse in current.sparse_initializer:
                yield sparse.values
                yield sparse.indices
            nodes.extend(current.node)
            continue
        for attribute in nodes.pop().attribute:
            if attribute.HasField("t"):
                yield attribute.t
            yield from attribute.tensors
            for sparse in (attribute.sparse_tensor, *attribute.sparse_tensors):
                yield sparse.values
                yield sparse.indices
            if attribute.HasField("g"):
                graphs.append(attribute.g)
            graphs.extend(attribute.graphs)


def check_onnx(path: Path) -> None:
    """Refuse tensors stored outside the file: their location would be read on the grader."""
    import onnx  # protobuf parsing only

    model = onnx.load(str(path), load_external_data=False)
    for tensor in _tensors(model):
        if tensor.data_location == onnx.TensorProto.EXTERNAL or len(tensor.external_data):
            raise GradingError(
                "onnx_external_data",
                gettext_noop(
                    "your ONNX model keeps the tensor %(name)s in an external file; save it as"
                    " one file (onnx.save(model, path, save_as_external_data=False))"
                )
                % {"name": repr(tensor.name[:80])},
            )


def load(data: bytes, device: str, threads: int, kind: TaskKind) -> tuple[Predict, int, str]:
    """An onnxruntime session on the CPU, or on the CUDA device when the worker grades on one."""
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper

    from grader.fingerprints import array_weights

    model = onnx.load_from_string(data)
    params = sum(int(np.prod(t.dims, dtype=np.int64)) for t in model.graph.initializer)
    weights = array_weights(numpy_helper.to_array(t) for t in model.graph.initializer)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    providers: list[Any] = ["CPUExecutionProvider"]
    if device.startswith("cuda"):
        index = device.partition(":")[2] or "0"
        providers.insert(0, ("CUDAExecutionProvider", {"device_id": int(index)}))
    try:
        session = ort.InferenceSession(data, options, providers=providers)
    except Exception as exc:
        raise GradingError(
            "invalid_model", f"onnxruntime cannot load this model: {safe_message(exc)}"
        ) from exc
    if len(session.get_inputs()) != 1:
        raise GradingError(
            "model_inputs", "the ONNX model must take exactly one input (the image batch)"
        )
    name = session.get_inputs()[0].name

    def predict(batch: np.ndarray) -> np.ndarray:
        return np.asarray(session.run(None, {name: batch})[0])

    return predict, params, weights
