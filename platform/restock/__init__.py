"""restock — an autonomous inventory-replenishment agent.

The library face: forecast consumption, plan orders, load org configuration.
"""

from __future__ import annotations

from restock.config import OrgConfig, load_org, load_orgs
from restock.domain import (OrderLine, PurchaseOrder, Reason, RunSummary, Snapshot)
from restock.errors import ConfigError, DataError, Fatal, RestockError, Retriable
from restock.forecast import forecast

__version__ = "0.1.0"

__all__ = [
    "ConfigError", "DataError", "Fatal", "OrderLine", "OrgConfig", "PurchaseOrder", "Reason",
    "RestockError", "Retriable", "RunSummary", "Snapshot", "__version__", "forecast",
    "load_org", "load_orgs",
]
