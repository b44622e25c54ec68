"""The state store's tables: runs and their summaries, the order ledger and its audit trail,
the model catalog, summaries waiting to be delivered again, and the service each closed review
cycle delivered.

Alembic migrations (``migrations/versions``) create and change these tables; this module is the
single description the repositories query through.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

runs = sa.Table(
    "runs", metadata,
    sa.Column("run_id", sa.String(80), primary_key=True),
    sa.Column("org", sa.String(64), nullable=False, index=True),
    sa.Column("status", sa.String(16), nullable=False),        # running | ok | partial | failed
    sa.Column("mode", sa.String(16), nullable=False),
    sa.Column("as_of", sa.Date),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("summary", sa.JSON),                               # RunSummary as JSON, secret-free
)

ledger_orders = sa.Table(
    "ledger_orders", metadata,
    sa.Column("order_id", sa.String(80), primary_key=True),
    sa.Column("idempotency_key", sa.String(120), nullable=False, unique=True),
    sa.Column("org", sa.String(64), nullable=False, index=True),
    sa.Column("supplier", sa.String(200), nullable=False),
    sa.Column("slot", sa.String(40), nullable=False),
    sa.Column("run_id", sa.String(80), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("document", sa.JSON, nullable=False),              # the PurchaseOrder as JSON
    sa.Column("total", sa.Float, nullable=False),
    sa.Column("external_id", sa.String(200)),
    sa.Column("detail", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True)),
    sa.Column("submitted_at", sa.DateTime(timezone=True)),
    sa.Column("seen_at", sa.DateTime(timezone=True)),            # first seen as on-order upstream
)

ledger_events = sa.Table(
    "ledger_events", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("order_id", sa.String(80), sa.ForeignKey("ledger_orders.order_id"), nullable=False,
              index=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),          # "restock" or the person
    sa.Column("from_status", sa.String(16)),
    sa.Column("to_status", sa.String(16), nullable=False),
    sa.Column("comment", sa.Text),
    sa.Column("changes", sa.JSON),                               # e.g. {"A12": [240, 120]}
)

model_catalog = sa.Table(
    "model_catalog", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("org", sa.String(64), nullable=False),
    sa.Column("run_id", sa.String(80), nullable=False, index=True),
    sa.Column("sku", sa.String(200), nullable=False),
    sa.Column("model", sa.String(64), nullable=False),
    sa.Column("demand_class", sa.String(32)),
    sa.Column("params", sa.JSON),
    sa.Column("mase", sa.Float),
    sa.Column("rmsse", sa.Float),
    sa.Column("rate_per_day", sa.Float),                         # the point forecast, per day
    sa.Column("window_start", sa.Date),
    sa.Column("window_end", sa.Date),
    sa.Column("observations", sa.Integer),
    sa.Column("code_version", sa.String(32), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("chosen_by", sa.String(16)),      # why the model (forecast.select.CHOSEN_BY)
    sa.Index("ix_model_catalog_org_sku", "org", "sku"),
    sa.Index("ix_model_catalog_org_created_at", "org", "created_at"),   # retention prune
)

# What one run's forecast said over each SKU's lead time + review from its planning date, one row
# per run: once those windows close, their realised errors teach later runs the spread. A run of
# 100,000 SKUs is one row of packed arrays (float64, little-endian), read back in milliseconds,
# where a row per SKU meant reading millions of rows per run.
forecast_windows = sa.Table(
    "forecast_windows", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("org", sa.String(64), nullable=False),
    sa.Column("run_id", sa.String(80), nullable=False),
    sa.Column("as_of", sa.Date, nullable=False),
    sa.Column("skus", sa.Text, nullable=False),                  # one per line
    sa.Column("horizon_days", sa.LargeBinary, nullable=False),
    sa.Column("horizon_mean", sa.LargeBinary, nullable=False),
    sa.Column("horizon_sd", sa.LargeBinary, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_forecast_windows_org_as_of", "org", "as_of"),
)

pending_summaries = sa.Table(
    "pending_summaries", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("org", sa.String(64), nullable=False, index=True),
    sa.Column("run_id", sa.String(80), nullable=False),
    sa.Column("sink", sa.String(120), nullable=False),           # "summary_sinks.0 (slack)"
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("last_error", sa.Text),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("run_id", "sink", name="uq_pending_summaries_run_sink"),
)

service_cycles = sa.Table(
    "service_cycles", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("org", sa.String(64), nullable=False),
    sa.Column("service_group", sa.String(200), nullable=False),  # "org", "item:cycle:0.95"...
    sa.Column("cycle_end", sa.Date, nullable=False),              # the planning date closing it
    sa.Column("item_cycles", sa.Integer, nullable=False),
    sa.Column("stockout_cycles", sa.Integer, nullable=False),
    sa.Column("units_asked", sa.Float, nullable=False),
    sa.Column("units_met", sa.Float, nullable=False),
    sa.Column("backorders", sa.Float, nullable=False),            # open at the cycle's end
    sa.Column("shift_in_force", sa.Float, nullable=False),        # z units, while it ran
    sa.Column("shift_next", sa.Float, nullable=False),            # decided at its end
    sa.Column("run_id", sa.String(80), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("org", "service_group", "cycle_end", name="uq_service_cycles_end"),
)
