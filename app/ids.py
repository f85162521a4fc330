"""Resource identifiers: random, unguessable, URL-safe."""

import uuid


def new_id() -> str:
    return uuid.uuid4().hex
