"""The service each closed review cycle delivered, per org and service group.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "service_cycles",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("org", sa.String(length=64), nullable=False),
        sa.Column("service_group", sa.String(length=200), nullable=False),
        sa.Column("cycle_end", sa.Date(), nullable=False),
        sa.Column("item_cycles", sa.Integer(), nullable=False),
        sa.Column("stockout_cycles", sa.Integer(), nullable=False),
        sa.Column("units_asked", sa.Float(), nullable=False),
        sa.Column("units_met", sa.Float(), nullable=False),
        sa.Column("backorders", sa.Float(), nullable=False),
        sa.Column("shift_in_force", sa.Float(), nullable=False),
        sa.Column("shift_next", sa.Float(), nullable=False),
        sa.Column("run_id", sa.String(length=80), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("org", "service_group", "cycle_end", name="uq_service_cycles_end"),
    )


def downgrade() -> None:
    op.drop_table("service_cycles")
