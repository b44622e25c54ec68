"""The model catalog is pruned by age (``forecast.catalog_days``): an index on (org, created_at)
finds an org's old rows without reading the whole table.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_model_catalog_org_created_at", "model_catalog", ["org", "created_at"],
                    if_not_exists=True)   # an operator may have built it CONCURRENTLY first


def downgrade() -> None:
    op.drop_index("ix_model_catalog_org_created_at", table_name="model_catalog")
