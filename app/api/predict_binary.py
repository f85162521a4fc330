"""The .npy encoding of POST /predict: the compact body for large batches.

A request whose Content-Type is application/x-npy (or application/octet-stream) carries one
float32/float64 array of shape (n, n_features). The .npy header is parsed and checked before
any data is looked at, only plain float arrays are taken (no pickled object can ever be
loaded), and the data is used in place, without a copy. Rows and features are the inference
service's to check, as for every other encoding.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from fastapi import Response

from app.errors import InvalidInput

NPY_MEDIA_TYPE = "application/x-npy"
NPY_MEDIA_TYPES = frozenset({NPY_MEDIA_TYPE, "application/octet-stream"})
FLOAT_DTYPES = (np.dtype("<f4"), np.dtype("<f8"), np.dtype(">f4"), np.dtype(">f8"))
# A .npy header for a 2-D float array is about 100 bytes; anything near this is not one.
MAX_HEADER_BYTES = 1024
BINARY_SCHEMA: dict[str, Any] = {"type": "string", "format": "binary"}


def read_npy(body: bytes) -> np.ndarray[Any, Any]:
    """The (n, k) float array in body, a read-only view of it; InvalidInput for anything else."""
    stream = io.BytesIO(body)
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(
                stream, max_header_size=MAX_HEADER_BYTES
            )
        elif version == (2, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(
                stream, max_header_size=MAX_HEADER_BYTES
            )
        else:
            raise InvalidInput(f"unsupported .npy format version {version[0]}.{version[1]}")
    except (ValueError, EOFError) as exc:
        raise InvalidInput(f"the body is not a valid .npy file: {exc}") from None
    if dtype not in FLOAT_DTYPES:
        raise InvalidInput(f"the array must be float32 or float64, not {dtype}")
    if len(shape) != 2:
        raise InvalidInput(f"the array must have shape (n, n_features), not {shape}")
    data = memoryview(body)[stream.tell() :]
    expected = shape[0] * shape[1] * dtype.itemsize
    if len(data) != expected:
        raise InvalidInput(f"the .npy data holds {len(data)} bytes; its header promises {expected}")
    return np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran_order else "C")


def wants_npy(accept: str | None) -> bool:
    """Whether an Accept header prefers the .npy answer to JSON (RFC 9110 section 12.5.1).

    `application/x-npy;q=0` says .npy is not acceptable: reading only the media type before
    the first `;`, that was answered with .npy. A tie (`application/x-npy, */*`) keeps JSON.
    """
    npy = json = 0.0
    for item in (accept or "").split(","):
        kind, *parameters = (part.strip() for part in item.split(";"))
        quality = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        kind = kind.lower()
        if kind == NPY_MEDIA_TYPE:
            npy = max(npy, quality)
        elif kind in ("application/json", "application/*", "*/*"):
            json = max(json, quality)
    return npy > 0.0 and npy > json


def npy_response(array: np.ndarray[Any, Any]) -> Response:
    out = io.BytesIO()
    np.save(out, array, allow_pickle=False)
    return Response(out.getvalue(), media_type=NPY_MEDIA_TYPE)
