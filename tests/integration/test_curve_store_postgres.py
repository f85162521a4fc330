"""The learning-curve store on PostgreSQL: the same checks as on SQLite (tests/app)."""

from __future__ import annotations

from collections.abc import Iterator

import curve_checks
import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from app.db.engine import make_engine, make_session_factory
from app.db.migrate import upgrade_to_head

pytestmark = pytest.mark.integration


@pytest.fixture
def factory(postgres_url: str) -> Iterator[sessionmaker[Session]]:
    upgrade_to_head(postgres_url)
    engine = make_engine(postgres_url)
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


def test_at_most_40_bytes_of_database_per_point(factory: sessionmaker[Session]) -> None:
    def relation_bytes() -> int:
        with factory() as session:
            size = session.scalar(text("SELECT pg_total_relation_size('history_chunks')"))
            return int(size or 0)

    curve_checks.check_storage_per_point(factory, relation_bytes)


def test_migration_converts_stored_points(postgres_url: str) -> None:
    curve_checks.check_migration_converts_stored_points(postgres_url)
