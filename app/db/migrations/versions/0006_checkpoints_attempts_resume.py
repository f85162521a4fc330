"""job checkpoints, attempts, resume provenance, training state with models

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 09:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "job_checkpoints",
        sa.Column("job_id", sa.String(length=32), nullable=False),
        sa.Column("iteration", sa.Integer(), nullable=False),
        sa.Column("saved_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("job_id"),
    )
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("attempts", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(
            sa.Column("start_iteration", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("parent_model_id", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("parent_job_id", sa.String(length=32), nullable=True))
    with op.batch_alter_table("models", schema=None) as batch_op:
        batch_op.add_column(sa.Column("parent_model_id", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("train_state", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    # Never by copying the table (SQLite's batch "move and copy"): with foreign keys on, dropping
    # the old jobs table would cascade to the curves, and models are referenced by aliases.
    # ALTER TABLE ... DROP COLUMN does it in place (SQLite >= 3.35, PostgreSQL).
    with op.batch_alter_table("models", schema=None, recreate="never") as batch_op:
        batch_op.drop_column("train_state")
        batch_op.drop_column("parent_model_id")
    with op.batch_alter_table("jobs", schema=None, recreate="never") as batch_op:
        batch_op.drop_column("parent_job_id")
        batch_op.drop_column("parent_model_id")
        batch_op.drop_column("start_iteration")
        batch_op.drop_column("attempts")
    op.drop_table("job_checkpoints")
