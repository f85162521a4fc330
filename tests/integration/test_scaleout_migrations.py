"""The same Alembic migrations give PostgreSQL and SQLite the same schema."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest
from sqlalchemy import Float, Integer, LargeBinary, String, create_engine, inspect
from sqlalchemy.types import TypeEngine

pytestmark = pytest.mark.integration


def migrate(database_url: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "migrate"],
        env={**os.environ, "DNN_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]


# Families whose members differ only in a backend's spelling: PostgreSQL reflects FLOAT as
# DOUBLE PRECISION, SQLite as REAL (8 bytes as well); TEXT and VARCHAR are both strings of a
# length the backend may or may not enforce.
TYPE_FAMILIES = (Float, Integer, String, LargeBinary)


def type_family(column_type: TypeEngine[Any]) -> str:
    generic = column_type.as_generic()
    for family in TYPE_FAMILIES:
        if isinstance(generic, family):
            return family.__name__
    return type(generic).__name__


def schema(database_url: str) -> dict[str, Any]:
    """Tables, columns (generic type, nullability), indexes and foreign keys, backend-neutral."""
    engine = create_engine(database_url)
    try:
        inspector = inspect(engine)
        described: dict[str, Any] = {}
        for table in sorted(inspector.get_table_names()):
            columns = {
                column["name"]: (type_family(column["type"]), column["nullable"])
                for column in inspector.get_columns(table)
            }
            # PostgreSQL also lists the index behind each UNIQUE constraint; those are compared
            # as constraints, by columns, since SQLite leaves them unnamed.
            indexes = sorted(
                (index["name"], tuple(index["column_names"]), bool(index["unique"]))
                for index in inspector.get_indexes(table)
                if "duplicates_constraint" not in index
            )
            unique = sorted(
                tuple(constraint["column_names"])
                for constraint in inspector.get_unique_constraints(table)
            )
            foreign_keys = sorted(
                (
                    tuple(fk["constrained_columns"]),
                    fk["referred_table"],
                    tuple(fk["referred_columns"]),
                    (fk.get("options") or {}).get("ondelete"),
                )
                for fk in inspector.get_foreign_keys(table)
            )
            primary_key = tuple(inspector.get_pk_constraint(table)["constrained_columns"])
            described[table] = {
                "columns": columns,
                "primary_key": primary_key,
                "indexes": indexes,
                "unique": unique,
                "foreign_keys": foreign_keys,
            }
        return described
    finally:
        engine.dispose()


def test_migrations_give_postgresql_and_sqlite_identical_schemas(
    postgres_url: str, sqlite_url: str
) -> None:
    migrate(postgres_url)
    migrate(sqlite_url)
    on_postgres, on_sqlite = schema(postgres_url), schema(sqlite_url)
    assert {"datasets", "jobs", "history_chunks", "models", "alembic_version"} <= set(on_postgres)
    assert on_postgres == on_sqlite


def test_migrating_twice_is_a_no_op(postgres_url: str) -> None:
    migrate(postgres_url)
    before = schema(postgres_url)
    migrate(postgres_url)
    assert schema(postgres_url) == before
