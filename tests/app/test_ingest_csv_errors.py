"""CSV bytes that the csv module itself cannot read are a clear 422, never a 500."""

from __future__ import annotations

import pytest

from app import ingest
from app.errors import InvalidInput

LIMITS = ingest.Limits(max_cells=100, max_bytes=10_000, max_classes=10, max_outputs=10)


def test_a_lone_carriage_return_ends_a_row() -> None:
    parsed = ingest.from_csv(b"a,label\r1,0\r2,1\r", None, LIMITS)
    assert parsed.X.tolist() == [[1.0], [2.0]]


def test_a_field_beyond_the_csv_modules_limit_is_invalid_input() -> None:
    data = b'a,label\n"' + b"1" * 200_000 + b'",0\n'
    with pytest.raises(InvalidInput, match="cannot be read"):
        ingest.from_csv(data, None, LIMITS)
