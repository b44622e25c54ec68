"""What each run's forecast said over each SKU's lead time + review from its planning date, one
packed row per run: the windows the live planner learns its spread from once they close.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "forecast_windows",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("org", sa.String(length=64), nullable=False),
        sa.Column("run_id", sa.String(length=80), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("skus", sa.Text(), nullable=False),
        sa.Column("horizon_days", sa.LargeBinary(), nullable=False),
        sa.Column("horizon_mean", sa.LargeBinary(), nullable=False),
        sa.Column("horizon_sd", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_forecast_windows_org_as_of", "forecast_windows", ["org", "as_of"])


def downgrade() -> None:
    op.drop_index("ix_forecast_windows_org_as_of", table_name="forecast_windows")
    op.drop_table("forecast_windows")
