"""The model catalog says why each series has its model (``chosen_by``: backtest, steady,
previous or class; see restock.forecast.select.CHOSEN_BY). Rows written before are left NULL.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("model_catalog", sa.Column("chosen_by", sa.String(16)))


def downgrade() -> None:
    with op.batch_alter_table("model_catalog") as batch:     # SQLite rebuilds the table
        batch.drop_column("chosen_by")
