"""``Content-Disposition: attachment`` for any file name, per RFC 6266 and RFC 5987.

Stored names are not all valid names today (rows written before names were checked may hold
anything), so the header is built to be safe for every string: a quoted ASCII fallback with no
quote, backslash or control character, and the exact name percent-encoded as UTF-8.
"""

from __future__ import annotations

import re
from urllib.parse import quote

_UNSAFE_IN_QUOTES = re.compile(r'[^\x20-\x7e]|["\\]')


def attachment(filename: str) -> str:
    fallback = _UNSAFE_IN_QUOTES.sub("_", filename) or "download"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"
