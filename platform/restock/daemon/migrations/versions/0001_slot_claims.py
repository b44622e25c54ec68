"""Slot claims: which replica owns each (org, scheduled slot) and how it ended.

Revision ID: daemon_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "daemon_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "daemon_slot_claims",
        sa.Column("org", sa.String(64), primary_key=True),
        sa.Column("slot", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("replica", sa.String(120), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("run_id", sa.String(64)),
        sa.Column("detail", sa.Text),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_daemon_slot_claims_claimed_at", "daemon_slot_claims",
                    ["org", "claimed_at"])


def downgrade() -> None:
    op.drop_index("ix_daemon_slot_claims_claimed_at", table_name="daemon_slot_claims")
    op.drop_table("daemon_slot_claims")
