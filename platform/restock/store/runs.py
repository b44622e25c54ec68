"""Runs and their summaries, and summaries a sink has yet to receive."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

import sqlalchemy as sa

from restock.domain import AccuracyPoint, Mode, RunStatus, RunSummary
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


_LISTED = (runs.c.run_id, runs.c.org, runs.c.status, runs.c.mode, runs.c.as_of,
           runs.c.started_at, runs.c.finished_at)


def _record(row) -> RunRecord:
    return RunRecord(row.run_id, row.org, row.status, row.mode, row.as_of,
                     _aware(row.started_at), _aware(row.finished_at))


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

    def why_no_summary(self, run_id: str) -> str:
        """What to tell someone asking for a run that has no summary."""
        return no_summary_reason(run_id, self.record(run_id))

    def list(self, org: str | None = None, *, limit: int = 50,
             status: RunStatus | None = None) -> list[RunRecord]:
        """Runs, newest first."""
        query = sa.select(*_LISTED) \
            .order_by(runs.c.started_at.desc(), runs.c.run_id.desc()).limit(limit)
        if org is not None:
            query = query.where(runs.c.org == org)
        if status is not None:
            query = query.where(runs.c.status == str(status))
        with self.engine.connect() as conn:
            return [_record(r) for r in conn.execute(query)]

    def latest_summary(self, org: str, *, before: str | None = None) -> RunSummary | None:
        """The newest finished summary of ``org`` (other than run ``before``)."""
        with self.engine.connect() as conn:
            data = conn.execute(self._finished(org, before, runs.c.summary).limit(1)).scalar()
        return RunSummary.model_validate(data) if data else None

    # A large org's summary holds every line with its reasons (about 19 MB of JSON at 20,000
    # SKUs): what a run needs of earlier runs is read without loading whole summaries.

    def record(self, run_id: str) -> RunRecord | None:
        """One run as listed (no summary), or None."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(*_LISTED).where(runs.c.run_id == run_id)).first()
        return _record(row) if row is not None else None

    def latest(self, org: str, *, before: str | None = None) -> RunRecord | None:
        """The newest run of ``org`` that has a summary (other than run ``before``)."""
        with self.engine.connect() as conn:
            row = conn.execute(self._finished(org, before, *_LISTED).limit(1)).first()
        return _record(row) if row is not None else None

    def accuracy_points(self, org: str, *, before: str | None = None,
                        limit: int = 9) -> list[AccuracyPoint]:
        """The accuracy each of the newest ``limit`` finished runs of ``org`` measured (the last
        point of its summary's trend: its own), newest first; runs without one are left out."""
        query = self._finished(org, before, runs.c.summary["accuracy"]).limit(limit)
        with self.engine.connect() as conn:
            trends = conn.execute(query).scalars().all()
        return [AccuracyPoint.model_validate(trend[-1]) for trend in trends if trend]

    def prune_summaries(self, org: str, before: datetime, *, keep: int) -> int:
        """Delete the summaries of ``org``'s runs that finished before ``before``
        (timezone-aware), except its newest ``keep`` summaries (what the next run reads of
        earlier ones) and any a summary sink is still owed; how many. The runs stay listed."""
        if before.tzinfo is None:
            raise ValueError("prune needs a timezone-aware time")
        newest = self._finished(org, None, runs.c.run_id).limit(keep)
        owed = sa.select(pending_summaries.c.run_id).where(pending_summaries.c.org == org)
        with self.engine.begin() as conn:
            kept = set(conn.execute(newest).scalars()) | set(conn.execute(owed).scalars())
            old = conn.execute(sa.select(runs.c.run_id).where(
                runs.c.org == org, runs.c.summary.is_not(None),
                runs.c.finished_at < before.astimezone(UTC))).scalars().all()
            gone = [run_id for run_id in old if run_id not in kept]
            for at in range(0, len(gone), 500):
                conn.execute(runs.update().where(runs.c.run_id.in_(gone[at:at + 500]))
                             .values(summary=sa.null()))   # SQL NULL, not JSON null
        return len(gone)

    @staticmethod
    def _finished(org: str, before: str | None, *columns) -> sa.Select:
        """``columns`` of the runs of ``org`` that have a summary, newest first."""
        query = sa.select(*columns).where(runs.c.org == org, runs.c.summary.is_not(None)) \
            .order_by(runs.c.started_at.desc(), runs.c.run_id.desc())
        return query if before is None else query.where(runs.c.run_id != before)

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


def no_summary_reason(run_id: str, record: RunRecord | None) -> str:
    """What to tell someone asking for run ``run_id`` (its ``record``, None when there is no
    such run), which has no summary."""
    if record is not None and record.finished_at is not None and record.status != "running":
        return (f"run {run_id!r} finished on {record.finished_at:%Y-%m-%d}, but its summary "
                "is no longer kept (older than the org's summary_days)")
    return f"no finished run {run_id!r}"
