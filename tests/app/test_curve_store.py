"""The learning-curve store on SQLite: paging, thinned views, truncation, bytes per point.

The same checks run on PostgreSQL in tests/integration/test_curve_store_postgres.py.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import curve_checks
import pytest
from sqlalchemy.orm import Session, sessionmaker

from app.db.engine import make_engine, make_session_factory
from app.db.migrate import upgrade_to_head


@pytest.fixture
def factory(sqlite_url: str) -> Iterator[sessionmaker[Session]]:
    upgrade_to_head(sqlite_url)
    engine = make_engine(sqlite_url)
    yield make_session_factory(engine)
    engine.dispose()


def test_paging_reads_every_point_once(factory: sessionmaker[Session]) -> None:
    curve_checks.check_paging_reads_every_point_once(factory)


def test_thinned_reads_are_bounded_by_what_they_return(factory: sessionmaker[Session]) -> None:
    curve_checks.check_thinned_reads_are_bounded_by_what_they_return(factory)


def test_every_view_is_made_of_real_points(factory: sessionmaker[Session]) -> None:
    curve_checks.check_every_view_is_made_of_real_points(factory)


def test_truncating_equals_never_having_written(factory: sessionmaker[Session]) -> None:
    curve_checks.check_truncating_equals_never_having_written(factory)


def test_points_only_move_forward(factory: sessionmaker[Session]) -> None:
    curve_checks.check_points_only_move_forward(factory)


def test_at_most_40_bytes_of_database_per_point(
    factory: sessionmaker[Session], sqlite_url: str
) -> None:
    path = Path(sqlite_url.removeprefix("sqlite:///"))

    def file_bytes() -> int:
        with sqlite3.connect(path) as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return path.stat().st_size

    curve_checks.check_storage_per_point(factory, file_bytes)


def test_migration_converts_stored_points(sqlite_url: str) -> None:
    curve_checks.check_migration_converts_stored_points(sqlite_url)
