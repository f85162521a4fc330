"""Pydantic validation errors as the service's InvalidInput, without echoing the input."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from app.errors import InvalidInput


def error_details(
    errors: Sequence[ErrorDetails | dict[str, Any]], prefix: tuple[str, ...] = ()
) -> list[dict[str, Any]]:
    return [
        {"loc": [*prefix, *error["loc"]], "msg": error["msg"], "type": error["type"]}
        for error in errors
    ]


def summarize(details: list[dict[str, Any]]) -> str:
    first = details[0]
    # No location: the whole body (a JSON syntax error), which said ": Invalid JSON: ...".
    where = ".".join(str(part) for part in first["loc"]) or "body"
    more = f" (and {len(details) - 1} more problem(s))" if len(details) > 1 else ""
    return f"{where}: {first['msg']}{more}"


def invalid_input_from(exc: ValidationError, prefix: tuple[str, ...] = ()) -> InvalidInput:
    details = error_details(exc.errors(include_input=False, include_url=False), prefix)
    return InvalidInput(summarize(details), details)
