"""Service feedback: correct the level asked of a formula by the service it actually delivered.

A formula's level is not what a policy delivers: stock left above the order-up-to level after a
promotion or a forecast drop, whole units and packs, a spread learnt from few windows all move
achieved service away from the target, by amounts no formula knows ahead. A
:class:`ServiceRecord` of closed review cycles (the replay's, or the live store's) gives a shift
of the safety factor (:func:`service_correction`), and :func:`corrected_level` the level to ask
instead. The replay (:mod:`restock.simulate`) and the live planner use the same two functions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from scipy.stats import norm

FEEDBACK_LIMIT = 1.5       # most the correction may move the safety factor (z units)
LOWEST_ASKED = 0.3         # the corrected level stays within (0.3, 0.9999)
FEEDBACK_PRIOR = 200.0     # item-cycles of evidence at which a correction counts half


@dataclass
class ServiceRecord:
    """Service delivered per closed review cycle, pooled over the items that could have been
    served and sold in the year before the cycle ended: the record a system keeps of its own
    stockouts and fill.

    ``shifts`` (optional, one per cycle) is the shift that was in force while each cycle ran, as
    the live store keeps it; when it is empty the shifts are worked out again from the record
    itself, as the replay (which applied exactly those) does.
    """

    year: int = 52                                            # periods in a year
    cycles: list[int] = field(default_factory=list)           # item-cycles counted
    stockout_cycles: list[int] = field(default_factory=list)  # of them, with a stockout
    demand: list[float] = field(default_factory=list)         # units asked in the cycle
    met: list[float] = field(default_factory=list)            # of them, served from stock
    shifts: list[float] = field(default_factory=list)         # shift in force per cycle


class GroupShift(NamedTuple):
    """The shift a service group's delivered service asks for, and the evidence behind it."""

    shift: float          # z units, added to the safety factor of the group's level
    item_cycles: int = 0  # item-cycles it rests on (the last year's)
    cycles: int = 0       # closed review cycles it rests on


def service_correction(record: ServiceRecord, level: float, *, fill_rate: bool = False,
                       window: int = 13) -> float:
    """The shift of the safety factor (z units) that the service delivered so far asks for.

    After each closed review cycle the shift is re-estimated from the last ``window`` cycles:
    the average shift they ran with, plus the gap between the target and the pooled service
    they delivered, both as safety factors (``Phi^-1``) — a fixed point where the service
    delivered is the target. Averaging over the window keeps one bad week from swinging the
    stock, and the shift is shrunk towards 0 while the window holds few item-cycles
    (``n / (n + FEEDBACK_PRIOR)``): a correction from a handful of cycles would otherwise set
    the stock for a year. Kept within ``±FEEDBACK_LIMIT``.
    """
    target = norm.ppf(level)
    asked = record.demand if fill_rate else record.cycles
    served = record.met if fill_rate else \
        [c - s for c, s in zip(record.cycles, record.stockout_cycles, strict=True)]
    known = record.shifts if len(record.shifts) == len(asked) else None
    shifts, shift = [], 0.0   # shifts[k]: the shift in force while cycle k ran
    for k in range(len(asked)):
        shifts.append(known[k] if known is not None else shift)
        recent = slice(max(0, k + 1 - window), k + 1)
        total = sum(asked[recent])
        if total > 0:
            achieved = np.clip(sum(served[recent]) / total, 1e-3, 1 - 1e-3)
            evidence = sum(record.cycles[recent])
            weight = evidence / (evidence + FEEDBACK_PRIOR)
            shift = weight * (np.mean(shifts[recent]) + target - norm.ppf(achieved))
            shift = float(np.clip(shift, -FEEDBACK_LIMIT, FEEDBACK_LIMIT))
    return shift


def corrected_level(level: float, shift: float) -> float:
    """``level`` with its safety factor moved by ``shift`` (z units)."""
    return float(np.clip(norm.cdf(norm.ppf(level) + shift), LOWEST_ASKED, 0.9999))
