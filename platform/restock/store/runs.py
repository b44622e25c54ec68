"""Runs and their summaries, and summaries a sink has yet to receive."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

import sqlalchemy as sa

from restock.domain import Mode, RunStatus, RunSummary
from restock.store.ledger import _aware
from restock.store.schema import pending_summaries, runs


@dataclass(frozen=True)
class RunRecord:
    """One run as listed: enough for a table of runs without loading every summary."""

    run_id: str
    org: str
    status: str
    mode: str
    as_of: date | None
    started_at: datetime
    finished_at: datetime | None


class Runs:
    """Every run of every org, with its summary once it has one."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def start(self, org: str, run_id: str, mode: Mode, started_at: datetime) -> None:
        """Record that a run began (so a crash mid-run still leaves a trace)."""
        with self.engine.begin() as conn:
            conn.execute(runs.insert().values(run_id=run_id, org=org, status="running",
                                              mode=str(mode), started_at=started_at))

    def abandon_stale(self, org: str, started_before: datetime) -> int:
        """Mark runs of ``org`` still 'running' from before ``started_before`` as abandoned (their
        process died; the ledger, not the run record, says what became of their orders)."""
        with self.engine.begin() as conn:
            return conn.execute(runs.update().where(
                runs.c.org == org, runs.c.status == "running",
                runs.c.started_at < started_before).values(status="abandoned")).rowcount

    def finish(self, summary: RunSummary) -> None:
        """Store the run's summary and final status."""
        values = {"status": str(summary.status), "as_of": summary.as_of,
                  "finished_at": summary.finished_at or datetime.now(UTC),
                  "summary": summary.model_dump(mode="json")}
        with self.engine.begin() as conn:
            updated = conn.execute(runs.update().where(runs.c.run_id == summary.run_id)
                                   .values(**values)).rowcount
            if not updated:
                conn.execute(runs.insert().values(run_id=summary.run_id, org=summary.org,
                                                  mode=str(summary.mode),
                                                  started_at=summary.started_at, **values))

    def summary(self, run_id: str) -> RunSummary | None:
        """The stored summary of a run, or None (unknown run, or one that never finished)."""
        with self.engine.connect() as conn:
            data = conn.execute(sa.select(runs.c.summary).where(runs.c.run_id == run_id)).scalar()
        return RunSummary.model_validate(data) if data else None

    def list(self, org: str | None = None, *, limit: int = 50,
             status: RunStatus | None = None) -> list[RunRecord]:
        """Runs, newest first."""
        query = sa.select(runs.c.run_id, runs.c.org, runs.c.status, runs.c.mode, runs.c.as_of,
                          runs.c.started_at, runs.c.finished_at) \
            .order_by(runs.c.started_at.desc(), runs.c.run_id.desc()).limit(limit)
        if org is not None:
            query = query.where(runs.c.org == org)
        if status is not None:
            query = query.where(runs.c.status == str(status))
        with self.engine.connect() as conn:
            return [RunRecord(r.run_id, r.org, r.status, r.mode, r.as_of, _aware(r.started_at),
                              _aware(r.finished_at)) for r in conn.execute(query)]

    def latest_summary(self, org: str, *, before: str | None = None) -> RunSummary | None:
        """The newest finished summary of ``org`` (other than run ``before``)."""
        query = sa.select(runs.c.summary).where(runs.c.org == org, runs.c.summary.is_not(None)) \
            .order_by(runs.c.started_at.desc()).limit(1)
        if before is not None:
            query = query.where(runs.c.run_id != before)
        with self.engine.connect() as conn:
            data = conn.execute(query).scalar()
        return RunSummary.model_validate(data) if data else None

    def orgs(self) -> list[str]:
        with self.engine.connect() as conn:
            return sorted(conn.execute(sa.select(runs.c.org).distinct()).scalars())


class PendingSummaries:
    """Summaries a sink failed to take; retried at the org's next run."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def failed(self, org: str, run_id: str, sink: str, error: str) -> None:
        """Remember (or count again) that ``sink`` did not take the summary of ``run_id``."""
        now = datetime.now(UTC)
        where = (pending_summaries.c.run_id == run_id) & (pending_summaries.c.sink == sink)
        with self.engine.begin() as conn:
            updated = conn.execute(pending_summaries.update().where(where).values(
                attempts=pending_summaries.c.attempts + 1, last_error=error,
                updated_at=now)).rowcount
            if not updated:
                conn.execute(pending_summaries.insert().values(
                    org=org, run_id=run_id, sink=sink, attempts=1, last_error=error,
                    updated_at=now))

    def delivered(self, run_id: str, sink: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(pending_summaries.delete().where(
                pending_summaries.c.run_id == run_id, pending_summaries.c.sink == sink))

    def list(self, org: str) -> list[tuple[str, str, int]]:
        """(run_id, sink, attempts) still owed, oldest first."""
        query = sa.select(pending_summaries.c.run_id, pending_summaries.c.sink,
                          pending_summaries.c.attempts).where(pending_summaries.c.org == org) \
            .order_by(pending_summaries.c.id)
        with self.engine.connect() as conn:
            return [tuple(row) for row in conn.execute(query)]
