"""The long-lived service: scheduling, hot reload, one run per slot across replicas, health."""

from __future__ import annotations

from restock.daemon.core import Daemon, SlotClock, SlotOutcome
from restock.daemon.slots import SlotLedger, slot_key

__all__ = ["Daemon", "SlotClock", "SlotLedger", "SlotOutcome", "slot_key"]
