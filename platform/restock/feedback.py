"""Live service feedback: each run closes the review cycle that ended at its planning date and
corrects the levels it plans to by the service delivered over the last year.

A *service group* is the items planned to the same target and measure (a pool, or e.g.
``item:cycle:0.95``; :func:`restock.policy.inputs.service_group`). Per group and closed cycle the
store keeps item-cycles, stockout cycles, units asked and met (``store.service``): the live form
of the replay's :class:`restock.policy.ServiceRecord`, read by the same
:func:`restock.policy.service_correction`.

The rule that closes a cycle (:func:`close_cycle`), from the snapshot's positions and the sales
since the group's previous cycle end:

- a group's cycle runs from its last recorded cycle end (before its first, the latest earlier
  planning date at least a review period back) to this planning date, and closes once the
  shortest review period of its items has passed; the first run has nothing to close. Every run
  records, dry runs too: what the shelves delivered does not depend on who sent the orders;
- an item counts when it sold in the year before the planning date and could have been served
  all cycle: its first sale in the history + its review period + its lead time is on or before
  the cycle's start;
- a counted item had a stockout when it has backorders at the snapshot, or sold in the cycle and
  has nothing free left (on hand <= allocated);
- units met are the cycle's sales; units asked add the group's new backorders (those open now
  beyond those open at the previous cycle end).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import NamedTuple

import numpy as np
import pandas as pd

from restock.config import OrgConfig
from restock.domain import ServiceDelivered
from restock.insight import service_delivered
from restock.policy import GroupShift, ServiceRecord, service_correction
from restock.policy.inputs import item_settings
from restock.store import ServiceCycle, Store

YEAR = timedelta(days=365)


class CycleCount(NamedTuple):
    """What one service group's closed cycle delivered."""

    item_cycles: int
    stockout_cycles: int
    units_asked: float
    units_met: float
    backorders: float   # open at the cycle's end, over the counted items


@dataclass
class Feedback:
    """Per service group: the shift for ``plan(service_shift=...)`` and the summary's lines."""

    shifts: dict[str, GroupShift] = field(default_factory=dict)
    service: list[ServiceDelivered] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)   # groups whose cycle this run closed


def service_feedback(config: OrgConfig, items: pd.DataFrame, history: pd.DataFrame,
                     as_of: date, store: Store, run_id: str) -> Feedback:
    """Close the cycle ending at ``as_of`` for every service group of ``items`` (once per
    planning date) and work out each group's shift from its last year of cycles.

    ``items`` are the planned items (sku, category, on_hand, allocated, backorders,
    lead_time_days, review_period_days); ``history`` the cleaned sales (sku, date, quantity).
    With ``policy.service_feedback`` off, cycles are still recorded but no shift is applied.
    """
    groups = _groups(items, config)
    if groups.empty:
        return Feedback()
    sales = _sales(history)
    stored = store.service.between(config.org, as_of - YEAR, as_of)
    ends = store.service.last_ends(config.org, before=as_of)
    runs = _run_dates(store, config.org, as_of)
    feedback, new = Feedback(), []
    for group, members in groups.groupby("service_group", sort=True):
        rows = [r for r in stored if r.service_group == group]
        level, fill = float(members["level"].iloc[0]), bool(members["fill_rate"].iloc[0])
        start = _closing_from(rows, ends.get(group), runs, members, as_of)
        if start is not None:
            rows.append(_closed(store, config.org, group, members, sales, start, as_of, run_id))
        shift = group_shift(rows, level, fill)
        applied = shift.shift if config.policy.service_feedback else 0.0
        if start is not None:   # the shift decided now is in force during the next cycle
            rows[-1] = dataclasses.replace(rows[-1], shift_next=applied)
            new.append(rows[-1])
            feedback.closed.append(group)
        if applied:
            feedback.shifts[group] = shift
        feedback.service.append(service_delivered(group, "fill_rate" if fill else "cycle",
                                                  level, rows, shift.shift,
                                                  config.policy.service_feedback))
    store.service.record(new)
    return feedback


def close_cycle(members: pd.DataFrame, sales: pd.DataFrame, start: date, end: date, *,
                backorders_before: float = 0.0) -> CycleCount:
    """Count one group's review cycle from ``start`` to ``end`` (the planning date).

    The replay marks a cycle short when demand went unmet or a backorder was left. Live, only
    the snapshot at the cycle's end and the sales before it are seen: a backorder then is demand
    left unmet, and an item that sold in the cycle and has nothing free left ran out while
    demand was still coming (its sales stopped because its stock did). A shortage refilled
    before the end goes unseen, but a periodic review's stock is lowest at the cycle's end,
    just before the next order can cover it, which is where its stockouts happen.
    """
    sku = members["sku"].astype(str)
    in_cycle = _sold(sales, start, end).reindex(sku, fill_value=0.0).to_numpy()
    in_year = _sold(sales, end - YEAR, end).reindex(sku, fill_value=0.0).to_numpy()
    first = sales[sales["quantity"] > 0].groupby("sku")["date"].min().reindex(sku) \
        .to_numpy(dtype="datetime64[ns]")
    wait = pd.to_timedelta(members["review_period_days"].to_numpy(float)
                           + members["lead_time_days"].to_numpy(float), unit="D").to_numpy()
    reachable = first + wait <= np.datetime64(start, "ns")   # never sold: NaT, not reachable
    counted = (in_year > 0) & reachable
    backorders = members["backorders"].to_numpy(float)
    free = (members["on_hand"] - members["allocated"]).to_numpy(float)
    short = counted & ((backorders > 0) | ((in_cycle > 0) & (free <= 0)))
    met = float(in_cycle[counted].sum())
    open_now = float(backorders[counted].sum())
    return CycleCount(item_cycles=int(counted.sum()), stockout_cycles=int(short.sum()),
                      units_asked=met + max(open_now - backorders_before, 0.0), units_met=met,
                      backorders=open_now)


def group_shift(rows: list[ServiceCycle], level: float, fill_rate: bool) -> GroupShift:
    """The shift a group's cycles (oldest first, the last year's) ask of ``level``."""
    record = ServiceRecord(cycles=[r.item_cycles for r in rows],
                           stockout_cycles=[r.stockout_cycles for r in rows],
                           demand=[r.units_asked for r in rows], met=[r.units_met for r in rows],
                           shifts=[r.shift_in_force for r in rows])
    shift = service_correction(record, level, fill_rate=fill_rate, window=max(len(rows), 1))
    return GroupShift(shift=shift, item_cycles=sum(record.cycles), cycles=len(rows))


def _groups(items: pd.DataFrame, config: OrgConfig) -> pd.DataFrame:
    """The planned items that have a service group, with its level and measure."""
    if items.empty:
        return pd.DataFrame(columns=["service_group"])
    settings = item_settings(items.reset_index(drop=True), config.policy)
    frame = items.reset_index(drop=True).assign(
        service_group=settings["service_group"], level=settings["asked_level"],
        fill_rate=settings["fill_rate"])
    return frame[frame["service_group"].notna()]


def _sales(history: pd.DataFrame) -> pd.DataFrame:
    sku = history["sku"]
    # cleaned SKUs are text already: converting millions of them again took seconds (pandas 3)
    text = pd.api.types.is_object_dtype(sku) or pd.api.types.is_string_dtype(sku)
    return pd.DataFrame({"sku": sku if text else sku.astype(str),
                         "date": pd.to_datetime(history["date"]),
                         "quantity": pd.to_numeric(history["quantity"], errors="coerce")
                         .fillna(0.0)})


def _sold(sales: pd.DataFrame, start: date, end: date) -> pd.Series:
    window = sales[(sales["date"] >= pd.Timestamp(start)) & (sales["date"] < pd.Timestamp(end))]
    return window.groupby("sku")["quantity"].sum()


def _closed(store: Store, org: str, group: str, members: pd.DataFrame, sales: pd.DataFrame,
            start: date, end: date, run_id: str) -> ServiceCycle:
    """The group's cycle from ``start`` to ``end``, run under the shift its previous one chose."""
    last = [r for r in store.service.between(org, start - timedelta(days=1), start)
            if r.service_group == group]
    before = last[-1] if last else None
    count = close_cycle(members, sales, start, end,
                        backorders_before=before.backorders if before else 0.0)
    return ServiceCycle(org=org, service_group=group, cycle_end=end, **count._asdict(),
                        shift_in_force=before.shift_next if before else 0.0, run_id=run_id)


def _run_dates(store: Store, org: str, as_of: date) -> list[date]:
    return [r.as_of for r in store.runs.list(org, limit=100)
            if r.as_of is not None and r.as_of < as_of]


def _closing_from(rows: list[ServiceCycle], last_end: date | None, runs: list[date],
                  members: pd.DataFrame, as_of: date) -> date | None:
    """The start of the group's cycle that closes at ``as_of``, or None when none does (a
    re-run of the date, less than a review period since the last end, the first run).

    Before the group's first cycle it starts at the latest earlier planning date at least a
    review period back: with daily runs of weekly reviews, last week's, not yesterday's."""
    review = float(members["review_period_days"].min())
    if any(r.cycle_end == as_of for r in rows):
        return None
    if last_end is None:
        return max((d for d in runs if (as_of - d).days >= review), default=None)
    return last_end if (as_of - last_end).days >= review else None
