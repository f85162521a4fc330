"""Model bytes: named tensors in the safetensors format plus JSON metadata.

safetensors stores raw little-endian arrays and a JSON header, so loading runs no code (no
pickle). The metadata dict travels as one JSON string under the header's ``__metadata__`` key,
because safetensors metadata values must be strings.
"""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np
from safetensors.numpy import load, save

from core.activations import Array
from core.errors import ModelFormatError

FORMAT = "dnn-core"
FORMAT_VERSION = "1"
_HEADER_LIMIT = 100_000_000


def dump(tensors: dict[str, Array], metadata: dict[str, Any]) -> bytes:
    """Serialize named arrays and a JSON-compatible metadata dict to bytes."""
    header = {"format": FORMAT, "version": FORMAT_VERSION, "metadata": json.dumps(metadata)}
    return bytes(save({name: np.ascontiguousarray(t) for name, t in tensors.items()}, header))


def _read_header(data: bytes) -> dict[str, Any]:
    """Parse the safetensors JSON header: an 8-byte little-endian length, then the JSON."""
    if len(data) < 8:
        raise ModelFormatError("model bytes are truncated")
    (length,) = struct.unpack("<Q", data[:8])
    if length > min(len(data) - 8, _HEADER_LIMIT):
        raise ModelFormatError("model bytes are truncated or not in safetensors format")
    header = json.loads(data[8 : 8 + length])
    if not isinstance(header, dict):
        raise ModelFormatError("the safetensors header is not a JSON object")
    return header


def restore(data: bytes) -> tuple[dict[str, Array], dict[str, Any]]:
    """Inverse of :func:`dump`.

    Raises
    ------
    ModelFormatError
        The bytes are not a model written by :func:`dump` (a ``ValueError``).
    """
    try:
        info = _read_header(data).get("__metadata__") or {}
        if info.get("format") != FORMAT or info.get("version") != FORMAT_VERSION:
            raise ModelFormatError("the bytes do not hold a dnn-core model of a known version")
        metadata = json.loads(info["metadata"])
        tensors = load(data)
    except ModelFormatError:
        raise
    except Exception as exc:
        # safetensors and json raise several unrelated types on corrupt input; callers only
        # need to know that the bytes are unusable.
        raise ModelFormatError(f"malformed model bytes: {exc}") from None
    if not isinstance(metadata, dict):
        raise ModelFormatError("model metadata is not a JSON object")
    return tensors, metadata
