"""A minimal text/event-stream reader for tests of GET /jobs/{id}/events."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass
class Event:
    event: str
    data: str
    id: str | None

    def json(self) -> Any:
        return json.loads(self.data)


def read_events(response: httpx.Response) -> Iterator[Event]:
    """A minimal text/event-stream parser (the WHATWG rules this server's output needs)."""
    fields: dict[str, list[str]] = {}
    for line in response.iter_lines():
        if line == "":
            if "data" in fields:
                event_id = fields["id"][-1] if "id" in fields else None
                name = fields.get("event", ["message"])[-1]
                yield Event(name, "\n".join(fields["data"]), event_id)
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            fields.setdefault(name, []).append(value.removeprefix(" "))
