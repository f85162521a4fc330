"""The learning-curve store on PostgreSQL: the same checks as on SQLite (tests/app)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import curve_checks
import pytest
from live_server import LiveServer
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker
from sse_events import read_events

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


def test_long_curve_reads_over_http(postgres_url: str, tmp_path: Path) -> None:
    """The HTTP reads of a long curve on PostgreSQL: bounded, paged, one snapshot per stream."""
    upgrade_to_head(postgres_url)
    engine = make_engine(postgres_url)
    n = 30_000
    try:
        factory = make_session_factory(engine)
        job_id = curve_checks.make_job(factory, n)
        points = curve_checks.curve(n, seed=21)
        curve_checks.write(factory, job_id, points, batches=(25, 1000))
    finally:
        engine.dispose()
    server = LiveServer(postgres_url, tmp_path / "server.log", workers=1)
    with server, server.client() as http:
        job = http.get(f"/jobs/{job_id}", params={"max_points": 1000}).json()
        assert job["thinned"] and job["points_total"] == n
        assert 250 < len(job["history"]) <= 1000
        assert job["history"][0] == points[0] and job["history"][-1] == points[-1]
        assert max(points, key=lambda p: p["cost"]) in job["history"]
        read: list[dict[str, Any]] = []
        since: int | None = 0
        while since is not None:
            page = http.get(
                f"/jobs/{job_id}/history", params={"since": since, "limit": 4_000}
            ).json()
            read += page["points"]
            since = page["next_since"]
        assert read == points
        with http.stream("GET", f"/jobs/{job_id}/events") as response:
            events = list(read_events(response))
        assert [e.event for e in events] == ["snapshot", "status", "end"]
        assert len(events[0].json()["points"]) <= 2000
