"""INSERT ... ON CONFLICT DO NOTHING on both supported backends (PostgreSQL and SQLite).

The database decides which of two concurrent inserts of the same key wins; the loser waits for
the winner to commit (PostgreSQL) or for the write lock (SQLite) and inserts nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import InstrumentedAttribute, Session

from app.db.tables import Base


def insert_unless_conflict(
    session: Session,
    entity: type[Base],
    values: dict[str, Any],
    conflict_columns: Sequence[str],
    returning: InstrumentedAttribute[Any],
) -> Any | None:
    """Insert the row unless it conflicts on conflict_columns; the returning column, or None."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        statement = postgresql.insert(entity).values(**values)
        statement = statement.on_conflict_do_nothing(index_elements=list(conflict_columns))
        return session.execute(statement.returning(returning)).scalar()
    lite = sqlite.insert(entity).values(**values)
    lite = lite.on_conflict_do_nothing(index_elements=list(conflict_columns))
    return session.execute(lite.returning(returning)).scalar()
