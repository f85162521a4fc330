"""CSV bytes that the csv module itself cannot read are a clear 422, never a 500."""

from __future__ import annotations

import numpy as np
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


def test_a_label_that_is_not_a_finite_number_is_named_as_text() -> None:
    """ "1e400" overflows, so it is a class name among numbers: the error used to say only "not a
    mix", naming neither label."""
    with pytest.raises(InvalidInput, match="label 1 is '1e400', text"):
        ingest.from_csv(b"a,label\n1,0\n2,1e400\n", None, LIMITS)


def test_a_label_holding_nul_is_refused_in_every_format() -> None:
    # NumPy strips a trailing NUL, so "x\0" and "x" were one class; PostgreSQL stores neither.
    with pytest.raises(InvalidInput, match="NUL"):
        ingest.from_csv(b"a,label\n1,x\x00\n2,x\n", None, LIMITS)
    y = np.array(["a\x00b", "c"])
    with pytest.raises(InvalidInput, match="NUL"):
        ingest.check_arrays(np.ones((2, 1)), y, LIMITS)
    assert ingest.check_arrays(np.ones((2, 1)), np.array(["ab", "c"]), LIMITS).classes == [
        "ab",
        "c",
    ]


def test_only_plain_ascii_numbers_are_numbers() -> None:
    """int() and float() take "1_0" and non-ASCII digits: the class names "٣" and "3" became
    one class 3, and a feature "1_000" was read as 1000."""
    with pytest.raises(InvalidInput, match="label 0 is '٣', text"):
        ingest.from_csv("a,label\n1,٣\n2,3\n".encode(), None, LIMITS)
    assert ingest.from_csv(b"a,label\n1,1_0\n2,x\n", None, LIMITS).classes == ["1_0", "x"]
    for cell in ("1_000", "١٢"):
        with pytest.raises(InvalidInput, match="is not a number"):
            ingest.from_csv(f"a,label\n{cell},0\n2,1\n".encode(), None, LIMITS)
    assert ingest.from_csv(b"a,label\n-1.5e3,0\n 2 ,1\n", None, LIMITS).X.tolist() == [
        [-1500.0],
        [2.0],
    ]


def test_the_default_label_is_the_last_column_even_when_an_earlier_one_shares_its_name() -> None:
    """ "x,y,x" took the first x as the label (classes 1, 3, 5), not the last column (0, 1)."""
    parsed = ingest.from_csv(b"x,y,x\n1,2,0\n3,4,1\n5,6,0\n", None, LIMITS)
    assert parsed.classes == [0, 1]
    assert parsed.X.tolist() == [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]
    with pytest.raises(InvalidInput, match="appears 2 times"):
        ingest.from_csv(b"x,y,x\n1,2,0\n3,4,1\n", "x", LIMITS)
