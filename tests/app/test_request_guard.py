"""The request guard (app/http/request_guard.py): its NUL escape scanner, wherever a body's
chunks split an escape."""

from __future__ import annotations

import pytest

from app.http.request_guard import NulEscapeScanner


def scan(*chunks: bytes) -> bool:
    scanner = NulEscapeScanner()
    return any(scanner.feed(chunk) for chunk in chunks)


@pytest.mark.parametrize(
    ("body", "holds_nul"),
    [
        (b'{"a": "x\\u0000"}', True),
        (b'{"a": "\\\\u0000"}', False),  # a backslash, then the text u0000
        (b'{"a": "\\\\\\u0000"}', True),  # a backslash, then NUL
        (b'{"a": "u0000"}', False),
        (b'{"a": "\\u00001"}', True),
        (b'{"a": "\\u0001"}', False),
        (b"", False),
    ],
)
def test_every_split_of_a_body_gives_the_same_answer(body: bytes, holds_nul: bool) -> None:
    assert scan(body) is holds_nul
    for cut in range(len(body) + 1):
        assert scan(body[:cut], body[cut:]) is holds_nul, cut
    assert scan(*(body[i : i + 1] for i in range(len(body)))) is holds_nul


def test_a_backslash_run_longer_than_the_kept_tail_keeps_its_parity() -> None:
    for run in range(1, 12):
        body = b"\\" * run + b"u0000"
        assert scan(*(body[i : i + 1] for i in range(len(body)))) is (run % 2 == 1), run
        assert scan(body[:3], body[3:]) is (run % 2 == 1), run
