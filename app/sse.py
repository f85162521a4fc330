"""A Server-Sent Events reader for the client: lines in, (event, id, data) out."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Event:
    event: str
    data: str
    id: str | None = None


def parse_events(lines: Iterable[str]) -> Iterator[Event]:
    """Events as the HTML standard defines them: fields until a blank line; comments skipped."""
    name: str = "message"
    event_id: str | None = None
    data: list[str] = []
    for raw in lines:
        line = raw.rstrip("\r\n")
        if not line:
            if data:
                yield Event(name, "\n".join(data), event_id)
            name, event_id, data = "message", None, []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            name = value
        elif field == "data":
            data.append(value)
        elif field == "id":
            event_id = value
    if data:
        yield Event(name, "\n".join(data), event_id)
