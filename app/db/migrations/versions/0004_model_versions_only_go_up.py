"""model versions only go up: per-name counters, unique (tenant, name, version)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 09:50:00

`version = max(version) + 1` could mint one version twice (two workers at once) and re-mint a
deleted latest version. Before the unique constraint can exist, duplicates already stored are
renumbered: in each (tenant, name, version) group the oldest model keeps its number and the
others get new numbers above the name's highest version, oldest first. Each name's counter
starts at its highest version.
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

models = sa.table(
    "models",
    sa.column("id", sa.String),
    sa.column("tenant_id", sa.String),
    sa.column("name", sa.String),
    sa.column("version", sa.Integer),
    sa.column("created_at", sa.DateTime),
)


def renumbered(rows: Sequence[Any]) -> dict[str, int]:
    """New versions for the duplicates among rows (tenant, name, version, created_at, id)."""
    highest: dict[tuple[str, str], int] = {}
    for tenant, name, version, _created, _id in rows:
        highest[(tenant, name)] = max(highest.get((tenant, name), 0), version)
    seen: set[tuple[str, str, int]] = set()
    changes: dict[str, int] = {}
    # Sorted by (tenant, name, version, created_at, id): the oldest of a group comes first.
    for tenant, name, version, _created, model_id in sorted(tuple(row) for row in rows):
        if (tenant, name, version) in seen:
            highest[(tenant, name)] += 1
            changes[model_id] = highest[(tenant, name)]
        else:
            seen.add((tenant, name, version))
    return changes


def upgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(
            models.c.tenant_id, models.c.name, models.c.version, models.c.created_at, models.c.id
        )
    ).all()
    for model_id, version in renumbered(rows).items():
        bind.execute(models.update().where(models.c.id == model_id).values(version=version))

    with op.batch_alter_table("models", schema=None) as batch_op:
        batch_op.drop_index("ix_models_tenant_name_version")
        batch_op.create_unique_constraint(
            "uq_models_tenant_name_version", ["tenant_id", "name", "version"]
        )

    counters = op.create_table(
        "model_version_counters",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("last_version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "name"),
    )
    bind.execute(
        counters.insert().from_select(
            ["tenant_id", "name", "last_version"],
            sa.select(models.c.tenant_id, models.c.name, sa.func.max(models.c.version)).group_by(
                models.c.tenant_id, models.c.name
            ),
        )
    )


def downgrade() -> None:
    op.drop_table("model_version_counters")
    with op.batch_alter_table("models", schema=None) as batch_op:
        batch_op.drop_constraint("uq_models_tenant_name_version", type_="unique")
        batch_op.create_index(
            "ix_models_tenant_name_version", ["tenant_id", "name", "version"], unique=False
        )
