"""Hand-built .npz archives: members whose .npy headers declare what the test wants.

A zip bomb's point is that its data decompress to far more than it weighs. Compressing two
gigabytes of zeros takes seconds; these helpers build the same deflate stream in milliseconds
by repeating one fully flushed block, whose bytes do not depend on what came before it.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass

import numpy as np

ZERO_CHUNK = 1 << 24


def npy_header(shape: tuple[int, ...], descr: str, fortran_order: bool = False) -> bytes:
    buffer = io.BytesIO()
    header = {"descr": descr, "fortran_order": fortran_order, "shape": shape}
    np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue()


@dataclass(frozen=True)
class Member:
    name: str
    compressed: bytes
    crc: int
    size: int
    method: int = 8  # deflate


def deflated(name: str, data: bytes) -> Member:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    body = compressor.compress(data) + compressor.flush()
    return Member(name, body, zlib.crc32(data), len(data))


def stored(name: str, data: bytes) -> Member:
    return Member(name, data, zlib.crc32(data), len(data), method=0)


def deflated_zeros(name: str, header: bytes, n_zero_bytes: int) -> Member:
    """header followed by n_zero_bytes zeros, deflated, without compressing them one by one."""
    chunks, rest = divmod(n_zero_bytes, ZERO_CHUNK)
    zeros = bytes(ZERO_CHUNK)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = compressor.compress(header) + compressor.flush(zlib.Z_FULL_FLUSH)
    # After a full flush the compressor forgets its history, so each block is the same bytes.
    repeated = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    assert compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH) == repeated
    tail = compressor.compress(bytes(rest)) + compressor.flush(zlib.Z_FINISH)
    crc = zlib.crc32(header)
    for _ in range(chunks):
        crc = zlib.crc32(zeros, crc)
    crc = zlib.crc32(bytes(rest), crc)
    return Member(name, head + repeated * chunks + tail, crc, len(header) + n_zero_bytes)


def build_zip(*members: Member) -> bytes:
    out = io.BytesIO()
    directory = io.BytesIO()
    for member in members:
        offset = out.tell()
        name = member.name.encode()
        fields = (20, 0, member.method, 0, 0x21, member.crc, len(member.compressed), member.size)
        out.write(b"PK\x03\x04" + struct.pack("<HHHHHIII", *fields))
        out.write(struct.pack("<HH", len(name), 0) + name + member.compressed)
        directory.write(b"PK\x01\x02" + struct.pack("<HHHHHHIII", 20, *fields))
        directory.write(struct.pack("<HHHHHII", len(name), 0, 0, 0, 0, 0, offset) + name)
    start, listing = out.tell(), directory.getvalue()
    out.write(listing)
    count = len(members)
    out.write(b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, count, count, len(listing), start, 0))
    return out.getvalue()
