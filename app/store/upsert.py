"""INSERT ... ON CONFLICT for the session's backend: the one way the store lets the database
decide a race (PostgreSQL and SQLite spell it the same; SQLAlchemy needs the dialect's insert)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def insert_for(session: Session, table: Any) -> postgresql.Insert | sqlite.Insert:
    """An INSERT on `table` that supports on_conflict_do_nothing/do_update on this backend."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)
