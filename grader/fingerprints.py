"""Fingerprints that find copied models: one of the weights, one of the predictions, and a sketch.

numpy only: the web process reads these helpers (``band_keys``, ``sketch_from_bytes``), and the
model process and the trusted parent compute the fingerprints.

* **Weights.** Each floating-point tensor a model holds (parameters and buffers; an ONNX
  graph's initializers) is hashed with its dtype and shape; the fingerprint is a hash of the
  sorted multiset of those hashes. Tensor names, their order and the file format play no part:
  the same weights saved as ``.pt2`` or TorchScript give the same fingerprint. It is computed
  in the model process, which is where the weights are read; a hostile model could send a
  forged one, which only hides its own ``same_weights`` evidence (its predictions are
  fingerprinted by the trusted parent, so a copy is still found).
* **Predictions.** The kind rounds the predictions to what its metric tells apart
  (``TaskKind.copy_rounded``); the fingerprint is their hash.
* **Sketch.** The kind's predictions at a fixed small set of positions of the hidden set
  (``TaskKind.copy_sketch``): enough to measure how similar two uploads' predictions are
  without keeping every prediction. ``band_keys`` cuts it into bands (locality-sensitive
  hashing): two uploads whose predictions agree almost everywhere share a band key with a
  probability close to one, two independent ones rarely, so only uploads that share a key are
  compared.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from eval_data.dataset import Dataset
    from grader.kinds import TaskKind

FINGERPRINT = re.compile(r"[0-9a-f]{64}")
#: bands a sketch is cut into for candidate buckets
BANDS = 16


def tensor_digest(dtype: str, shape: Iterable[int], data: bytes) -> bytes:
    """One tensor's hash: its dtype's name (``float32``), its shape and its bytes."""
    head = f"{dtype}:{','.join(str(int(d)) for d in shape)}:".encode()
    return hashlib.sha256(head + data).digest()


def weights_fingerprint(digests: Iterable[bytes]) -> str:
    """The hash of a sorted multiset of ``tensor_digest`` values ("" for a model without any)."""
    ordered = sorted(digests)
    if not ordered:
        return ""
    total = hashlib.sha256(b"weights-v1:")
    for digest in ordered:
        total.update(digest)
    return total.hexdigest()


def array_weights(arrays: Iterable[np.ndarray]) -> str:
    """``weights_fingerprint`` of numpy arrays (an ONNX graph's initializers), floats only."""
    return weights_fingerprint(
        tensor_digest(a.dtype.name, a.shape, _little_endian(a).tobytes())
        for a in arrays
        if a.dtype.kind == "f"
    )


def _little_endian(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))


def checked_fingerprint(value: object) -> str:
    """A fingerprint a model process reported, or "" when it is not one (never trusted as text)."""
    return value if isinstance(value, str) and FINGERPRINT.fullmatch(value) else ""


@dataclass(frozen=True)
class PredictionPrints:
    """What the trusted parent keeps of one upload's predictions for finding copies."""

    exact: str
    sketch: bytes


def prediction_prints(
    kind: TaskKind, predictions: np.ndarray, dataset: Dataset
) -> PredictionPrints:
    """The exact fingerprint and the sketch of validated predictions on ``dataset``."""
    rounded = np.ascontiguousarray(kind.copy_rounded(predictions))
    exact = hashlib.sha256(
        f"predictions-v1:{kind.name}:{dataset.dataset_hash}:{rounded.dtype.str}:{rounded.shape}".encode()
        + rounded.tobytes()
    ).hexdigest()
    sketch = np.ascontiguousarray(kind.copy_sketch(predictions, dataset), dtype=kind.sketch_dtype)
    return PredictionPrints(exact, sketch.tobytes())


def sketch_from_bytes(kind: TaskKind, data: bytes) -> np.ndarray:
    """A stored sketch back as the kind's array (empty when there is none or it is malformed)."""
    dtype = np.dtype(kind.sketch_dtype)
    if not data or len(data) % dtype.itemsize:
        return np.zeros((0,), dtype=dtype)
    return np.frombuffer(bytes(data), dtype=dtype)


def band_keys(kind: TaskKind, sketch: np.ndarray, threshold: float) -> list[str]:
    """Bucket keys of a sketch: ``BANDS`` bands of the kind's tokens, each hashed.

    A band is ``rows`` consecutive tokens. For label kinds a pair whose share of equal labels
    is ``s`` shares one band with probability ``s ** rows``; ``rows`` is chosen so a pair at
    the threshold shares one with probability one half, so it shares at least one of the
    ``BANDS`` with probability 1 - 2⁻¹⁶.
    """
    tokens = np.ascontiguousarray(kind.copy_tokens(sketch), dtype=np.int64)
    rows = kind.copy_band_rows(threshold, len(tokens) // BANDS)
    if rows < 1 or len(tokens) < rows:
        return []
    keys = []
    for band in range(min(BANDS, len(tokens) // rows)):
        chunk = tokens[band * rows : (band + 1) * rows]
        digest = hashlib.sha256(f"{band}:".encode() + chunk.tobytes()).hexdigest()
        keys.append(digest[:32])
    return keys


def positions(seed_text: str, candidates: np.ndarray, count: int) -> np.ndarray:
    """``count`` of ``candidates`` (flat indices), the same for every upload on one test set."""
    if len(candidates) <= count:
        return np.asarray(candidates, dtype=np.int64)
    seed = int.from_bytes(hashlib.sha256(seed_text.encode()).digest()[:8], "big")
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(np.asarray(candidates, dtype=np.int64), size=count, replace=False))
