"""One organisation's run, end to end (DESIGN.md §2)::

    pull → clean → forecast → plan → guard → ledger → submit → summarise

:func:`run_org` is a plain function of (config, store, clock): the CLI, the daemon and the API only
decide when to call it. A user or data mistake ends as a FAILED summary naming the place, never as
a traceback, and no order is sent from a run that could not plan honestly.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from restock.config import OrgConfig
from restock.connectors import Scope, open_connector
from restock.domain import Mode, Reason, RunStatus, RunSummary
from restock.errors import RestockError
from restock.log import bind_run, get_logger
from restock.orders import OrderBook
from restock.planning import PlanningResult, plan_snapshot
from restock.store import Store

log = get_logger("restock.cycle")
Clock = Callable[[], datetime] | Any
STALE_RUN = timedelta(hours=6)      # a run 'running' for longer than this died with its process


def run_org(config: OrgConfig, *, store: Store, clock: Clock = None, dry_run: bool = False,
            stop: threading.Event | None = None) -> RunSummary:
    """Run ``config``'s cycle once and return its summary (also stored and posted to sinks)."""
    now = _now(clock)
    # Run ids are primary keys shared by every org: 64 random bits keep orgs started in the same
    # second apart (24 bits clashed for about 3% of 1,000 orgs started together).
    run_id = f"run-{now:%Y%m%d-%H%M%S}-{secrets.token_hex(8)}"
    mode = Mode.DRY_RUN if dry_run else config.mode
    with bind_run(config.org, run_id):
        run = _Run(config, store, now, run_id, mode, stop)
        return run.execute()


class _Run:
    """The state of one run while it goes through its steps."""

    def __init__(self, config: OrgConfig, store: Store, now: datetime, run_id: str, mode: Mode,
                 stop: threading.Event | None) -> None:
        self.config, self.store, self.now, self.mode = config, store, now, mode
        self.stop = stop or threading.Event()
        self.summary = RunSummary(org=config.org, run_id=run_id, status=RunStatus.OK, mode=mode,
                                  started_at=now, currency=config.currency,
                                  budget=config.policy.budget)
        self.timings: dict[str, float] = {}

    @property
    def live(self) -> bool:
        return self.mode != Mode.DRY_RUN

    def execute(self) -> RunSummary:
        self.store.runs.abandon_stale(self.config.org, self.now - STALE_RUN)
        self.store.runs.start(self.config.org, self.summary.run_id, self.mode, self.now)
        log.info("run.started", mode=str(self.mode))
        try:
            self._steps()
        except RestockError as err:
            self._fail(str(err))
        except Exception as err:  # a bug must still end as a recorded failed run
            log.exception("run.crashed")
            self._fail(f"internal error ({type(err).__name__}: {err}); nothing further was sent")
        return self._finish()

    def _steps(self) -> None:
        with open_connector(self.config, "order_sink") as sink:
            book = OrderBook(self.config, self.store.ledger, sink, self.now,
                             run_id=self.summary.run_id, live=self.live)
            self._timed("reconcile", lambda: self._note(book.prepare()))
            with open_connector(self.config, "source") as source:
                pulled = [self._timed("pull", lambda: source.pull(self._scope(source)))]
            # handed over, not kept: planning lets the raw snapshot go once it is cleaned
            # (about 0.8 GB for a 100,000-SKU daily history)
            result = self._timed("plan", lambda: plan_snapshot(
                self.config, pulled.pop(), book, self.store, self.now, self.summary.run_id))
            self._absorb(result)
            orders = self._timed("orders", lambda: book.place(result.plan, result.items,
                                                               result.as_of))
            self._note(orders.errors)
            if self.stop.is_set():
                self._note(["stopping: planned orders stay in the ledger and go out next run"])
            else:
                self._timed("submit", lambda: self._note(book.send(self.stop.is_set)))
            self._orders_into_summary(book)
            self._insight(result, book)

    def _absorb(self, result: PlanningResult) -> None:
        s = self.summary
        s.as_of = result.as_of
        s.quarantined = result.quarantined
        s.skipped.extend(result.skipped)
        s.forecast_accuracy = result.accuracy_summary
        s.stats.update(result.stats)
        s.service = result.service

    def _orders_into_summary(self, book: OrderBook) -> None:
        s = self.summary
        s.orders, s.held = book.sent_orders(), book.held_orders()
        s.skipped.extend(book.skipped)
        s.spend = round(sum(order.total for order in s.orders), 2)
        s.stats["orders"] = book.counts()

    def _insight(self, result: PlanningResult, book: OrderBook) -> None:
        from restock import insight

        ordered = {line.sku: line.quantity for o in [*self.summary.orders, *self.summary.held]
                   for line in o.lines}
        self.summary.stockouts = insight.stockouts(result.items, ordered, result.as_of)
        runs, org, this = self.store.runs, self.config.org, self.summary.run_id
        previous = runs.latest(org, before=this)
        self.summary.previous_run_id = previous.run_id if previous else None
        self.summary.accuracy = insight.accuracy_trend(
            runs.accuracy_points(org, before=this, limit=insight.TREND_RUNS - 1),
            result.accuracy_point)
        self.summary.model_changes = result.model_changes

    # -- endings

    def _fail(self, message: str) -> None:
        log.error("run.failed", error=message)
        self.summary.status = RunStatus.FAILED
        self.summary.errors.append(message)

    def _finish(self) -> RunSummary:
        s = self.summary
        if s.status != RunStatus.FAILED and (s.errors or s.quarantined):
            s.status = RunStatus.PARTIAL
        s.stats["seconds"] = {k: round(v, 3) for k, v in self.timings.items()}
        s.finished_at = datetime.now(UTC)
        self.store.runs.finish(s)
        self._deliver()
        self._prune_summaries()
        log.info("run.finished", status=str(s.status), orders=len(s.orders), held=len(s.held),
                 spend=s.spend)
        return s

    def _deliver(self) -> None:
        from restock.delivery import deliver_summaries

        problems = deliver_summaries(self.config, self.store, self.summary)
        if problems:
            self.summary.errors.extend(problems)
            if self.summary.status == RunStatus.OK:
                self.summary.status = RunStatus.PARTIAL
            self.store.runs.finish(self.summary)

    def _prune_summaries(self) -> None:
        # By the clock that stamped the runs (as the catalog's prune): a backfilled planning
        # date neither keeps what is old today nor deletes what is recent.
        from restock import insight

        days = self.config.summary_days
        if days is not None:
            gone = self.store.runs.prune_summaries(
                self.config.org, datetime.now(UTC) - timedelta(days=days),
                keep=insight.TREND_RUNS)
            if gone:
                log.info("run.summaries_pruned", summaries=gone, older_than_days=days)

    # -- helpers

    def _note(self, errors: list[str]) -> None:
        for error in errors:
            log.warning("run.problem", problem=error)
            self.summary.errors.append(error)
            self.summary.risks.append(Reason(code="attention", message=error))

    def _timed(self, step: str, work: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        try:
            return work()
        finally:
            self.timings[step] = time.perf_counter() - started

    def _scope(self, source: Any) -> Scope:
        # History is needed back from the planning date: a source pinned to a date of its own
        # (``as_of: 2026-01-31``) plans from there, not from today.
        pinned = getattr(source.settings, "as_of", None)
        base = pinned if isinstance(pinned, date) else self.now.date()
        return Scope(since=base - timedelta(days=self.config.forecast.history_days))


def _now(clock: Clock) -> datetime:
    if clock is None:
        return datetime.now(UTC)
    value = clock.now() if hasattr(clock, "now") else clock()
    return value if value.tzinfo else value.replace(tzinfo=UTC)
