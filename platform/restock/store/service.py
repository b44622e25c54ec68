"""The service each closed review cycle delivered, per org and service group (the live
:class:`restock.policy.ServiceRecord`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime

import sqlalchemy as sa

from restock.store.schema import service_cycles

_KEY = ("org", "service_group", "cycle_end")


@dataclass(frozen=True)
class ServiceCycle:
    """One service group's closed review cycle: what was asked, what was met, and the shift
    of the safety factor in force while it ran (and the one decided when it closed)."""

    org: str
    service_group: str
    cycle_end: date
    item_cycles: int
    stockout_cycles: int
    units_asked: float
    units_met: float
    backorders: float = 0.0      # the group's backorders open at the cycle's end
    shift_in_force: float = 0.0
    shift_next: float = 0.0
    run_id: str = ""


class ServiceCycles:
    """Closed review cycles, written once per (org, group, cycle end)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def record(self, cycles: list[ServiceCycle]) -> int:
        """Store ``cycles``; one already recorded for its org, group and end is kept as it was
        (a re-run of a planning date must not count its cycle twice). Returns how many were
        new."""
        if not cycles:
            return 0
        now = datetime.now(UTC)
        rows = [{**asdict(c), "created_at": now} for c in cycles]
        with self.engine.begin() as conn:
            insert = _insert_new(conn).returning(service_cycles.c.id)
            return sum(len(conn.execute(insert, row).all()) for row in rows)

    def between(self, org: str, after: date, until: date) -> list[ServiceCycle]:
        """``org``'s cycles that ended after ``after`` and by ``until``, oldest first."""
        c = service_cycles.c
        query = sa.select(*(c[f] for f in ServiceCycle.__dataclass_fields__)) \
            .where(c.org == org, c.cycle_end > after, c.cycle_end <= until) \
            .order_by(c.service_group, c.cycle_end)
        with self.engine.connect() as conn:
            return [ServiceCycle(**row._mapping) for row in conn.execute(query)]

    def last_ends(self, org: str, before: date) -> dict[str, date]:
        """Per service group of ``org``, the end of its latest cycle before ``before``."""
        c = service_cycles.c
        query = sa.select(c.service_group, sa.func.max(c.cycle_end)) \
            .where(c.org == org, c.cycle_end < before).group_by(c.service_group)
        with self.engine.connect() as conn:
            return {group: end for group, end in conn.execute(query)}


def _insert_new(conn: sa.Connection):
    dialect = conn.dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:   # no ON CONFLICT: the unique constraint still refuses a second row
        return service_cycles.insert()
    return insert(service_cycles).on_conflict_do_nothing(index_elements=list(_KEY))
