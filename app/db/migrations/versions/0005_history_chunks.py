"""history as packed chunks with multi-resolution summaries

Converts every job's per-point history rows into the chunked layout of
app/store/curve_codec.py (full resolution plus the bucket summaries), then drops the old table.
The conversion uses the codec's pure functions, the same ones the workers write with.

Revision ID: 0005
Revises: 0003
Create Date: 2026-11-27 09:40:00.000000
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from app.store.curve_codec import CurveBuilder, unpack

revision: str = "0005"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

METRIC_COLUMNS = ("cost", "accuracy", "val_cost", "val_accuracy")
BATCH_POINTS = 50_000

history = sa.table(
    "history",
    sa.column("job_id", sa.String),
    sa.column("iteration", sa.Integer),
    *(sa.column(name, sa.Float) for name in METRIC_COLUMNS),
)
chunks = sa.table(
    "history_chunks",
    sa.column("job_id", sa.String),
    sa.column("level", sa.SmallInteger),
    sa.column("last_iteration", sa.Integer),
    sa.column("data", sa.LargeBinary),
)


def _convert_job(bind: sa.Connection, job_id: str) -> None:
    builder = CurveBuilder.empty()
    after = -1
    while True:
        rows = bind.execute(
            sa.select(history.c.iteration, *(history.c[name] for name in METRIC_COLUMNS))
            .where(history.c.job_id == job_id, history.c.iteration > after)
            .order_by(history.c.iteration)
            .limit(BATCH_POINTS)
        ).all()
        if not rows:
            return
        points: list[dict[str, Any]] = [dict(row._mapping) for row in rows]
        new_rows = builder.add(points)
        bind.execute(
            sa.insert(chunks),
            [
                {
                    "job_id": job_id,
                    "level": r.level,
                    "last_iteration": r.last_iteration,
                    "data": r.data,
                }
                for r in new_rows
            ],
        )
        after = int(rows[-1].iteration)


def upgrade() -> None:
    op.create_table(
        "history_chunks",
        sa.Column("job_id", sa.String(length=32), nullable=False),
        sa.Column("level", sa.SmallInteger(), nullable=False),
        sa.Column("last_iteration", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("job_id", "level", "last_iteration"),
        sqlite_with_rowid=False,
    )
    bind = op.get_bind()
    job_ids = bind.execute(sa.select(history.c.job_id).distinct()).scalars().all()
    for job_id in job_ids:
        _convert_job(bind, job_id)
    op.drop_table("history")


def downgrade() -> None:
    op.create_table(
        "history",
        sa.Column("job_id", sa.String(length=32), nullable=False),
        sa.Column("iteration", sa.Integer(), nullable=False),
        sa.Column("cost", sa.Float(), nullable=False),
        sa.Column("accuracy", sa.Float(), nullable=False),
        sa.Column("val_cost", sa.Float(), nullable=True),
        sa.Column("val_accuracy", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("job_id", "iteration"),
    )
    bind = op.get_bind()
    level0 = (
        sa.select(chunks.c.job_id, chunks.c.data)
        .where(chunks.c.level == 0)
        .order_by(chunks.c.job_id, chunks.c.last_iteration)
    )
    for job_id, data in bind.execute(level0).all():
        bind.execute(
            sa.insert(history),
            [{"job_id": job_id, **point} for point in unpack(data).to_dicts()],
        )
    op.drop_table("history_chunks")
