"""restock — an autonomous inventory-replenishment agent.

The library face: load org configuration, forecast consumption, plan orders, run an org's whole
cycle against a state store, and decide on held orders.

    import restock
    config = restock.load_org("config/orgs/acme.yaml")
    with restock.open_store("sqlite:///var/restock.sqlite") as store:
        summary = restock.run_org(config, store=store, dry_run=True)
"""

from __future__ import annotations

from typing import Any

from restock.config import OrgConfig, load_org, load_orgs
from restock.domain import OrderLine, PurchaseOrder, Reason, RunSummary, Snapshot
from restock.errors import ConfigError, DataError, Fatal, RestockError, Retriable
from restock.forecast import forecast

__version__ = "0.1.0"

# Heavier entry points load on first use, so ``import restock`` stays quick.
_LAZY = {"run_org": "restock.cycle", "open_store": "restock.store", "plan": "restock.policy",
         "approve": "restock.approval", "reject": "restock.approval"}

__all__ = [
    "ConfigError", "DataError", "Fatal", "OrderLine", "OrgConfig", "PurchaseOrder", "Reason",
    "RestockError", "Retriable", "RunSummary", "Snapshot", "__version__", "approve", "forecast",
    "load_org", "load_orgs", "open_store", "plan", "reject", "run_org",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'restock' has no attribute {name!r}")
