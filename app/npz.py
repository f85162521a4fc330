"""Read an uploaded .npz archive without trusting it: every size is checked before it is allocated.

``np.load`` decompresses a member before anything can look at its shape, so a 2 MB upload whose
``X.npy`` declares two gigabytes of zeros takes two gigabytes of memory before it is refused.
Here the archive's central directory is bounded first, then each member's ``.npy`` header (shape
and dtype, a few hundred bytes) is read and checked against the limits, and only then is the data
decompressed, into a buffer of exactly the declared size, stopping at that size.
"""

from __future__ import annotations

import io
import math
import struct
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO

import numpy as np

from app.errors import InvalidInput, LimitExceeded, PayloadTooLarge
from app.schemas.common import MAX_ARRAY_DIMS

MEMBERS = ("X.npy", "y.npy")
# Two members need a few hundred bytes of central directory; more is not an archive of X and y.
MAX_CENTRAL_DIRECTORY_BYTES = 4096
# Deflate cannot exceed ~1032:1. A member that comes close is (almost) a single repeated byte:
# nothing to learn from, and the signature of a zip bomb.
MAX_COMPRESSION_RATIO = 1000
# The .npy header is a short Python dict literal; numpy's own default ceiling.
MAX_HEADER_BYTES = 10_000
CHUNK_BYTES = 1 << 20
END_OF_CENTRAL_DIRECTORY = b"PK\x05\x06"
ZIP64_LOCATOR = b"PK\x06\x07"
NPY_MAGIC = b"\x93NUMPY"
FEATURE_KINDS = "iuf"
LABEL_KINDS = "iufbU"


@dataclass(frozen=True)
class NpzLimits:
    max_cells: int
    max_bytes: int
    max_outputs: int


@dataclass(frozen=True)
class NpyHeader:
    shape: tuple[int, ...]
    fortran_order: bool
    dtype: np.dtype[np.generic]

    @property
    def cells(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.cells * self.dtype.itemsize


def _problem(message: str) -> InvalidInput:
    return InvalidInput(message, [{"loc": ["file"], "msg": message}])


def _check_central_directory(data: bytes) -> None:
    """Bound the central directory before zipfile parses it into one object per entry."""
    # zipfile looks for the end record in the last 64 KiB + 22 bytes, taking the last one.
    at = data.rfind(END_OF_CENTRAL_DIRECTORY, max(0, len(data) - (1 << 16) - 22))
    if at < 0 or len(data) < at + 22:
        raise _problem("the file is not a valid .npz archive")
    if at >= 20 and data[at - 20 : at - 16] == ZIP64_LOCATOR:
        raise _problem("the .npz archive uses a zip64 directory; X and y never need one")
    (directory_bytes,) = struct.unpack_from("<I", data, at + 12)
    if directory_bytes > MAX_CENTRAL_DIRECTORY_BYTES:
        raise _problem("the .npz archive lists more than its two members X.npy and y.npy")


def _members(archive: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    names = [info.filename for info in archive.infolist()]
    others = sorted(set(names) - set(MEMBERS))
    if others:
        raise _problem(
            f"the .npz archive may hold only X.npy and y.npy; it also holds {others[:5]}"
        )
    if len(names) != len(set(names)):
        raise _problem("the .npz archive holds the same member twice")
    missing = [name.removesuffix(".npy") for name in MEMBERS if name not in names]
    if missing:
        raise _problem(f"the .npz archive lacks {missing}; it needs X and y")
    members = {info.filename: info for info in archive.infolist()}
    for name, info in members.items():
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise _problem(f"{name} is compressed with an unsupported method; use deflate")
        if info.flag_bits & 0x1:
            raise _problem(f"{name} is encrypted")
    return members


def _read_header(stream: IO[bytes], name: str) -> NpyHeader:
    if stream.read(len(NPY_MAGIC)) != NPY_MAGIC:
        raise _problem(f"{name} is not a .npy array")
    version = stream.read(2)
    # read_array_header_* parse the header dict with ast.literal_eval: no code runs.
    readers: dict[bytes, Callable[..., tuple[tuple[int, ...], bool, np.dtype[np.generic]]]] = {
        b"\x01\x00": np.lib.format.read_array_header_1_0,
        b"\x02\x00": np.lib.format.read_array_header_2_0,
    }
    reader = readers.get(version)
    if reader is None:
        raise _problem(f"{name} has an unsupported .npy format version")
    try:
        shape, fortran_order, dtype = reader(stream, max_header_size=MAX_HEADER_BYTES)
    except (ValueError, TypeError, SyntaxError) as exc:
        raise _problem(f"{name} has a malformed .npy header") from exc
    if any(int(d) < 0 for d in shape):
        raise _problem(f"{name} has a malformed .npy header (a negative dimension)")
    if len(shape) > MAX_ARRAY_DIMS:
        raise _problem(
            f"{name} declares {len(shape)} dimensions; an array has at most {MAX_ARRAY_DIMS}"
        )
    if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None:
        raise _problem(
            f"{name} holds object or structured data, which is never loaded; "
            "send plain numeric arrays"
        )
    if dtype.itemsize == 0:
        raise _problem(f"{name} has an empty dtype")
    return NpyHeader(tuple(int(d) for d in shape), bool(fortran_order), dtype)


def _check_header(name: str, header: NpyHeader, limits: NpzLimits) -> None:
    kinds = FEATURE_KINDS if name == "X.npy" else LABEL_KINDS
    if header.dtype.kind not in kinds:
        what = "numbers" if name == "X.npy" else "numbers or strings"
        raise _problem(f"{name} must hold {what}, not dtype {header.dtype.str}")
    if name == "y.npy":
        if len(header.shape) not in (1, 2) or (len(header.shape) == 2 and header.dtype.kind != "f"):
            raise _problem("y must be one-dimensional (or two-dimensional floats for regression)")
        if len(header.shape) == 2 and header.shape[1] > limits.max_outputs:
            raise LimitExceeded(
                f"y has {header.shape[1]} outputs per sample; at most {limits.max_outputs} "
                "(DNN_MAX_LAYER_WIDTH), since each output is one unit of the output layer",
                [{"loc": ["file"], "msg": "too many outputs"}],
            )
    if header.cells > limits.max_cells:
        raise PayloadTooLarge(
            f"{name} declares {header.cells} values; this server accepts at most "
            f"{limits.max_cells} per array"
        )


def _read_data(stream: IO[bytes], name: str, header: NpyHeader) -> np.ndarray:
    buffer = bytearray(header.nbytes)
    view = memoryview(buffer)
    filled = 0
    while filled < len(buffer):
        chunk = stream.read(min(CHUNK_BYTES, len(buffer) - filled))
        if not chunk:
            raise _problem(f"{name} holds less data than its header declares")
        view[filled : filled + len(chunk)] = chunk
        filled += len(chunk)
    # Reading to the end also makes zipfile check the member's CRC.
    if stream.read(1):
        raise _problem(f"{name} holds more data than its header declares")
    array = np.frombuffer(buffer, dtype=header.dtype)
    return array.reshape(header.shape, order="F" if header.fortran_order else "C")


def read_npz(data: bytes, limits: NpzLimits) -> tuple[np.ndarray, np.ndarray]:
    """``(X, y)`` from an .npz upload, refusing anything over the limits before allocating it."""
    if data.startswith(NPY_MAGIC):
        raise _problem("the file is a single array; send an .npz archive with arrays X and y")
    _check_central_directory(data)
    try:
        # BytesIO shares the bytes it is given until written to: no copy of the upload.
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = _members(archive)
            headers: dict[str, NpyHeader] = {}
            for name in MEMBERS:
                with archive.open(members[name]) as stream:
                    headers[name] = _read_header(stream, name)
                _check_header(name, headers[name], limits)
                declared = max(members[name].file_size, headers[name].nbytes)
                if declared > MAX_COMPRESSION_RATIO * max(members[name].compress_size, 1):
                    raise PayloadTooLarge(
                        f"{name} expands more than {MAX_COMPRESSION_RATIO}:1 when decompressed"
                    )
            total = sum(header.nbytes for header in headers.values())
            if total > limits.max_bytes:
                raise PayloadTooLarge(
                    f"X and y declare {total} bytes; this server accepts at most "
                    f"{limits.max_bytes} (DNN_MAX_DATASET_BYTES)"
                )
            arrays = []
            for name in MEMBERS:
                with archive.open(members[name]) as stream:
                    _read_header(stream, name)
                    arrays.append(_read_data(stream, name, headers[name]))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError) as exc:
        raise _problem("the file is not a valid .npz archive, or it is damaged") from exc
    except (NotImplementedError, RuntimeError) as exc:
        # zipfile's words for unsupported features (e.g. an unknown compression, a password).
        raise _problem(f"the .npz archive cannot be read: {exc}") from exc
    return arrays[0], arrays[1]
