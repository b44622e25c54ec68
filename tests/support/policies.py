"""Replay rules for tests: the simplest policy a test can reason about by hand."""

from __future__ import annotations

import numpy as np

from restock.simulate import Decision, Policy


def fixed(level: float) -> Policy:
    """Order up to ``level`` units for every item at every review (reorder just below it)."""
    def decide(state: Decision):
        target = np.full(len(state.items.ids), level)
        return target - 1e-9, target
    return decide
