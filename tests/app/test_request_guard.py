"""The request guard (app/http/request_guard.py): its escape scanner, wherever a body's chunks
split an escape."""

from __future__ import annotations

import json

import pytest

from app.http.request_guard import NUL_MESSAGE, SURROGATE_MESSAGE, EscapeScanner


def scan(*chunks: bytes) -> str | None:
    scanner = EscapeScanner()
    return next((p for chunk in chunks if (p := scanner.feed(chunk)) is not None), None)


def every_split(body: bytes) -> list[tuple[bytes, ...]]:
    """The body whole, cut in two at every point, and fed one byte at a time."""
    return [
        (body,),
        *((body[:cut], body[cut:]) for cut in range(len(body) + 1)),
        tuple(body[i : i + 1] for i in range(len(body))),
    ]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b'{"a": "x\\u0000"}', NUL_MESSAGE),
        (b'{"a": "\\\\u0000"}', None),  # a backslash, then the text u0000
        (b'{"a": "\\\\\\u0000"}', NUL_MESSAGE),  # a backslash, then NUL
        (b'{"a": "u0000"}', None),
        (b'{"a": "\\u00001"}', NUL_MESSAGE),
        (b'{"a": "\\u0001"}', None),
        (b"", None),
        (b'{"a": "\\ud800"}', SURROGATE_MESSAGE),
        (b'{"a": "\\uDFFF"}', SURROGATE_MESSAGE),  # a low half alone
        (b'{"a": "\\udc00\\ud800"}', SURROGATE_MESSAGE),  # the halves the wrong way round
        (b'{"a": "\\ud800\\u0041"}', SURROGATE_MESSAGE),
        (b'{"a": "\\ud800\\\\udc00"}', SURROGATE_MESSAGE),  # then a backslash and text
        (b'{"a": "\\ud800\\ud800"}', SURROGATE_MESSAGE),
        (b'{"a": "\\ud83d\\ude00"}', None),  # a pair: one emoji
        (b'{"a": "\\uD83D\\uDE00\\ud83d\\ude00x"}', None),
        (b'{"a": "\\\\ud800"}', None),  # a backslash, then the text ud800
        (b'{"a": "\\ud7ff\\ue000"}', None),  # either side of the surrogates
    ],
)
def test_every_split_of_a_body_gives_the_same_answer(body: bytes, problem: str | None) -> None:
    for chunks in every_split(body):
        assert scan(*chunks) == problem, chunks


def test_the_scanner_agrees_with_utf8_on_what_json_decodes() -> None:
    """A body passes exactly when every string json decodes from it can be encoded as UTF-8."""
    for text in ["\ud800", "a\udfffb", "\U0001f600", "\ud83d", "é\u2028", "\\ud800", "\x01"]:
        body = json.dumps({"a": text}).encode()
        try:
            text.encode()
            encodable = True
        except UnicodeEncodeError:
            encodable = False
        for chunks in every_split(body):
            assert (scan(*chunks) is None) is encodable, (text, chunks)


def test_a_backslash_run_longer_than_the_kept_tail_keeps_its_parity() -> None:
    for escape, problem in [(b"u0000", NUL_MESSAGE), (b"ud800x", SURROGATE_MESSAGE)]:
        for run in range(1, 12):
            body = b"\\" * run + escape
            expected = problem if run % 2 == 1 else None
            assert scan(*(body[i : i + 1] for i in range(len(body)))) == expected, run
            assert scan(body[:3], body[3:]) == expected, run
