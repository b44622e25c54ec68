"""What each catalogued forecast said over the SKU's lead time + review, from its planning date:
the windows the live planner learns its spread from once they close.

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

COLUMNS = (("as_of", sa.Date()), ("horizon_days", sa.Float()), ("horizon_mean", sa.Float()),
           ("horizon_sd", sa.Float()))


def upgrade() -> None:
    with op.batch_alter_table("model_catalog") as batch:   # SQLite alters by copying the table
        for name, kind in COLUMNS:
            batch.add_column(sa.Column(name, kind, nullable=True))
    op.create_index("ix_model_catalog_org_as_of", "model_catalog", ["org", "as_of"])


def downgrade() -> None:
    op.drop_index("ix_model_catalog_org_as_of", table_name="model_catalog")
    with op.batch_alter_table("model_catalog") as batch:
        for name, _ in reversed(COLUMNS):
            batch.drop_column(name)
