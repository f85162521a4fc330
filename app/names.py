"""Model names: one character set and length, defined here and checked wherever a name is set.

A name is 1 to 100 characters of ASCII letters, digits, ``.``, ``_``, ``-`` and inner spaces; it
starts with a letter or a digit, does not end with a space, and is not ``stats`` (see RESERVED).
That keeps names safe in URLs
(``/v2/models/{name}``), HTTP headers, file names and logs, and leaves ``@`` and ``/`` free to
mean something else (``NAME@alias``, ``/models/names/{name}``).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated

from pydantic import AfterValidator, Field

MAX_LENGTH = 100
PATTERN = r"^[A-Za-z0-9](?:[A-Za-z0-9._ -]*[A-Za-z0-9._-])?$"
DESCRIPTION = (
    "1-100 characters: ASCII letters, digits, '.', '_', '-' and inner spaces, "
    "starting with a letter or digit"
)
FALLBACK = "model"

_VALID = re.compile(PATTERN)
_OUTSIDE = re.compile(r"[^A-Za-z0-9._ -]+")

# `/v2/models/stats` is the statistics of every model (the Open Inference Protocol's, and
# Triton's, path), so a model of that name could not be reached at `/v2/models/{name}`.
RESERVED = frozenset({"stats"})


def _not_reserved(name: str) -> str:
    if name in RESERVED:
        raise ValueError(
            f"the name {name!r} is reserved: /v2/models/{name} lists every model's statistics"
        )
    return name


ModelName = Annotated[
    str,
    Field(min_length=1, max_length=MAX_LENGTH, pattern=PATTERN, description=DESCRIPTION),
    AfterValidator(_not_reserved),
]


def is_valid(name: str) -> bool:
    return len(name) <= MAX_LENGTH and _VALID.fullmatch(name) is not None and name not in RESERVED


def to_model_name(text: str) -> str:
    """A valid name made from any text (e.g. an upload's file name), rather than a refusal.

    Accents are dropped (``é`` -> ``e``), every other run of characters outside the set becomes
    one ``_``, and what the name may not start or end with is trimmed.
    """
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    cleaned = _OUTSIDE.sub("_", ascii_text).strip(" ._-")[:MAX_LENGTH].rstrip(" ")
    if cleaned in RESERVED:
        return f"{cleaned}-{FALLBACK}"
    return cleaned if is_valid(cleaned) else FALLBACK
