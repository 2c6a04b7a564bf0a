"""Framed messages between the trusted grader and the process that runs a model.

A frame is a 4-byte big-endian header length, a JSON header, then ``header["size"]`` bytes of
payload. Every read is bounded: a model process that floods its pipe is cut off, not buffered.
"""

from __future__ import annotations

import json
import struct
from typing import IO, Any

import numpy as np

MAX_HEADER = 64 * 1024


class ProtocolError(Exception):
    """The other side sent something that is not a valid frame."""


class FrameTooLarge(ProtocolError):
    """A frame larger than the reader's bound: the other side sent more than it may."""


def write_message(fh: IO[bytes], header: dict[str, Any], payload: bytes | memoryview = b"") -> None:
    header = {**header, "size": len(payload)}
    raw = json.dumps(header).encode()
    fh.write(struct.pack(">I", len(raw)))
    fh.write(raw)
    if len(payload):
        fh.write(payload)
    fh.flush()


def _read_exact(fh: IO[bytes], size: int) -> bytes:
    chunks = []
    remaining = size
    while remaining:
        chunk = fh.read(min(remaining, 1 << 20))
        if not chunk:
            raise EOFError("stream ended mid-frame")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def read_message(fh: IO[bytes], max_payload: int) -> tuple[dict[str, Any], bytes]:
    """Read one frame; raise ``EOFError`` at a clean end of stream, ``ProtocolError`` if bad."""
    head = fh.read(4)
    if not head:
        raise EOFError("stream closed")
    if len(head) < 4:
        head += _read_exact(fh, 4 - len(head))
    (length,) = struct.unpack(">I", head)
    if length > MAX_HEADER:
        raise FrameTooLarge(f"header of {length} bytes exceeds {MAX_HEADER}")
    try:
        header = json.loads(_read_exact(fh, length))
        size = int(header["size"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ProtocolError(f"malformed header: {exc}") from exc
    if not isinstance(header, dict) or size < 0:
        raise ProtocolError("malformed header")
    if size > max_payload:
        raise FrameTooLarge(f"payload of {size} bytes exceeds the bound of {max_payload}")
    return header, _read_exact(fh, size)


def array_header(array: np.ndarray) -> dict[str, Any]:
    return {"dtype": array.dtype.str, "shape": list(array.shape)}


def array_from(header: dict[str, Any], payload: bytes) -> np.ndarray:
    """Rebuild an array, refusing object dtypes and sizes that do not match the header."""
    try:
        dtype = np.dtype(header["dtype"])
        shape = tuple(int(d) for d in header["shape"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ProtocolError(f"bad array header: {exc}") from exc
    if dtype.hasobject or dtype.kind not in "biuf":
        raise ProtocolError(f"refusing dtype {dtype}")
    if any(d < 0 for d in shape) or int(np.prod(shape, dtype=np.int64)) * dtype.itemsize != len(
        payload
    ):
        raise ProtocolError(f"payload of {len(payload)} bytes does not fit {dtype}{shape}")
    return np.frombuffer(payload, dtype=dtype).reshape(shape)
