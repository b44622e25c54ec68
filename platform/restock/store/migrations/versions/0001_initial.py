"""The first schema: runs, order ledger with its audit trail, model catalog, pending summaries.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('ledger_orders',
    sa.Column('order_id', sa.String(length=80), nullable=False),
    sa.Column('idempotency_key', sa.String(length=120), nullable=False),
    sa.Column('org', sa.String(length=64), nullable=False),
    sa.Column('supplier', sa.String(length=200), nullable=False),
    sa.Column('slot', sa.String(length=40), nullable=False),
    sa.Column('run_id', sa.String(length=80), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('document', sa.JSON(), nullable=False),
    sa.Column('total', sa.Float(), nullable=False),
    sa.Column('external_id', sa.String(length=200), nullable=True),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('seen_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('order_id'),
    sa.UniqueConstraint('idempotency_key')
    )
    op.create_index(op.f('ix_ledger_orders_org'), 'ledger_orders', ['org'], unique=False)
    op.create_index(op.f('ix_ledger_orders_status'), 'ledger_orders', ['status'], unique=False)
    op.create_table('model_catalog',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('org', sa.String(length=64), nullable=False),
    sa.Column('run_id', sa.String(length=80), nullable=False),
    sa.Column('sku', sa.String(length=200), nullable=False),
    sa.Column('model', sa.String(length=64), nullable=False),
    sa.Column('demand_class', sa.String(length=32), nullable=True),
    sa.Column('params', sa.JSON(), nullable=True),
    sa.Column('mase', sa.Float(), nullable=True),
    sa.Column('rmsse', sa.Float(), nullable=True),
    sa.Column('rate_per_day', sa.Float(), nullable=True),
    sa.Column('window_start', sa.Date(), nullable=True),
    sa.Column('window_end', sa.Date(), nullable=True),
    sa.Column('observations', sa.Integer(), nullable=True),
    sa.Column('code_version', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_model_catalog_org_sku', 'model_catalog', ['org', 'sku'], unique=False)
    op.create_index(op.f('ix_model_catalog_run_id'), 'model_catalog', ['run_id'], unique=False)
    op.create_table('pending_summaries',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('org', sa.String(length=64), nullable=False),
    sa.Column('run_id', sa.String(length=80), nullable=False),
    sa.Column('sink', sa.String(length=120), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('run_id', 'sink', name='uq_pending_summaries_run_sink')
    )
    op.create_index(op.f('ix_pending_summaries_org'), 'pending_summaries', ['org'], unique=False)
    op.create_table('runs',
    sa.Column('run_id', sa.String(length=80), nullable=False),
    sa.Column('org', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('mode', sa.String(length=16), nullable=False),
    sa.Column('as_of', sa.Date(), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('summary', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('run_id')
    )
    op.create_index(op.f('ix_runs_org'), 'runs', ['org'], unique=False)
    op.create_table('ledger_events',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('order_id', sa.String(length=80), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('from_status', sa.String(length=16), nullable=True),
    sa.Column('to_status', sa.String(length=16), nullable=False),
    sa.Column('comment', sa.Text(), nullable=True),
    sa.Column('changes', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['order_id'], ['ledger_orders.order_id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_ledger_events_order_id'), 'ledger_events', ['order_id'], unique=False)


def downgrade() -> None:
    for table in ("pending_summaries", "model_catalog", "ledger_events", "ledger_orders", "runs"):
        op.drop_table(table)
