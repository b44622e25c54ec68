"""The daemon: every org's cycle on its cron schedule, hot-reloaded, once per slot, stoppable.

The daemon only decides *when* the cycle runs (DESIGN.md §2). It schedules one APScheduler job per
org (the org's cron, in its time zone; misfires coalesced within a grace time; at most one instance
per org), runs jobs in a bounded thread pool, claims each slot in the state database before running
it (see :mod:`restock.daemon.slots`) and records the outcome in metrics and the claims table.
"""

from __future__ import annotations

import concurrent.futures
import inspect
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, JobEvent
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy.exc import SQLAlchemyError

from restock.config import OrgConfig
from restock.daemon.executor import SlotExecutor
from restock.daemon.metrics import Metrics
from restock.daemon.reload import Changes, OrgFiles
from restock.daemon.slots import ABANDONED, HELD, RUNNING_HERE, Claim, SlotLedger, slot_key
from restock.domain import RunSummary
from restock.errors import ConfigError
from restock.log import bind_run, get_logger
from restock.schedule import cron_trigger
from restock.settings import Settings

Runner = Callable[..., RunSummary]
Clock = Callable[[], datetime]
log = get_logger("restock.daemon")
CLAIM_WAIT_SECONDS = 1.0


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class SlotOutcome:
    """What became of one slot on this replica."""

    org: str
    slot: str
    kind: str                       # scheduled | manual
    outcome: str                    # ran | claimed_elsewhere | busy | stopping | unknown_org
    status: str | None = None       # the run's status when it ran (ok, partial, failed, error)
    run_id: str | None = None
    detail: str | None = None
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class SlotClock:
    """The clock handed to the cycle: reads as the slot's scheduled time, so every replica (and
    every retry of the slot) plans for the same instant and derives the same idempotency keys."""

    def __init__(self, slot: datetime) -> None:
        self.slot = slot

    def __call__(self) -> datetime:
        return self.slot

    def now(self) -> datetime:
        return self.slot


class Daemon:
    """Schedules and runs every org of a config folder until :meth:`stop`."""

    def __init__(self, settings: Settings, *, runner: Runner, store: Any, ledger: SlotLedger,
                 clock: Clock = utc_now, runner_clock: Callable[[datetime], Any] = SlotClock
                 ) -> None:
        self.settings = settings
        self.runner, self.store, self.ledger = runner, store, ledger
        self.clock, self.runner_clock = clock, runner_clock
        self.metrics = Metrics()
        self.files = OrgFiles(settings.config_dir)
        self.stopping = threading.Event()
        self.loaded = threading.Event()
        # Every slot attempt from its first step to its recorded end: (org, slot key) -> the
        # claim once it has one. stop() waits for all of them, claimed or not.
        self._active: dict[tuple[str, str], Claim | None] = {}
        self._active_cv = threading.Condition()
        self._runner_takes_stop = "stop" in inspect.signature(runner).parameters
        self.scheduler = BackgroundScheduler(
            timezone=UTC,
            executors={"default": SlotExecutor(settings.max_parallel_orgs, clock,
                                               on_missed=self._missed)},
            job_defaults={"coalesce": True, "max_instances": 1,
                          "misfire_grace_time": settings.misfire_grace_seconds})
        self.scheduler.add_listener(self._max_instances, EVENT_JOB_MAX_INSTANCES)

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Load every org file, schedule them and start the scheduler."""
        self.scheduler.start()
        self.reload()
        self.loaded.set()
        log.info("daemon.started", orgs=sorted(self.files.configs), replica=self.ledger.replica,
                 max_parallel_orgs=self.settings.max_parallel_orgs)

    def stop(self, timeout: float | None = None) -> bool:
        """Take no new runs, wait for runs in flight; True when none was left running."""
        timeout = self.settings.shutdown_timeout_seconds if timeout is None else timeout
        with self._active_cv:
            self.stopping.set()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        finished = self.wait_idle(timeout)
        if not finished:
            self._abandon_in_flight()
        log.info("daemon.stopped", clean=finished)
        return finished

    def _abandon_in_flight(self) -> None:
        with self._active_cv:
            claims = [claim for claim in self._active.values() if claim is not None]
        for claim in claims:
            try:
                self.ledger.finish(claim, ABANDONED, detail="still running at the shutdown timeout")
            except SQLAlchemyError as err:   # it stays "running": a replica can take it over
                log.error("slot.store_unavailable", org=claim.org, slot=claim.slot,
                          error=f"{type(err).__name__}: {str(err).splitlines()[0]}")
        log.warning("daemon.abandoned_runs", orgs=sorted(c.org for c in claims),
                    detail="the order ledger keeps them consistent; the next run reconciles")

    def wait_idle(self, timeout: float) -> bool:
        """Block until no run is in flight (or the timeout passes)."""
        with self._active_cv:
            return self._active_cv.wait_for(lambda: not self._active, timeout)

    def active_orgs(self) -> list[str]:
        """Orgs with a claimed run executing on this replica now."""
        with self._active_cv:
            return sorted({claim.org for claim in self._active.values() if claim is not None})

    # ------------------------------------------------------------ configuration

    def reload(self) -> Changes:
        """Apply edits, additions and deletions of org files; log rejected edits with file:line."""
        try:
            changes = self.files.poll()
        except ConfigError as err:
            log.error("config.unreadable", error=str(err))
            return Changes()
        for error in changes.rejected:
            log.error("config.rejected", error=str(error),
                      detail="the org keeps its last valid configuration")
        for org in changes.removed:
            self._unschedule(org)
        for config in changes.loaded:
            self._schedule(config)
        self.metrics.orgs.set(len(self.files.configs))
        self.metrics.config_errors.set(len(self.files.errors))
        return changes

    def _schedule(self, config: OrgConfig) -> None:
        trigger = cron_trigger(config.schedule, config.timezone)
        job = self.scheduler.get_job(config.org)
        if job is not None and _same_schedule(job.kwargs.get("config_key"), config):
            return
        self.scheduler.add_job(self._run_scheduled, trigger, args=(config.org,),
                               kwargs={"config_key": (config.schedule, config.timezone)},
                               id=config.org, name=f"restock {config.org}",
                               replace_existing=True)
        log.info("org.scheduled", org=config.org, schedule=config.schedule,
                 timezone=config.timezone, next_run=_iso(self.next_run(config.org)))

    def _unschedule(self, org: str) -> None:
        if self.scheduler.get_job(org) is not None:
            self.scheduler.remove_job(org)
        self.metrics.forget(org)
        log.info("org.removed", org=org)

    def next_run(self, org: str) -> datetime | None:
        job = self.scheduler.get_job(org)
        return getattr(job, "next_run_time", None) if job is not None else None

    # ------------------------------------------------------------ running

    # ``slot`` is always given by SlotExecutor; the default only satisfies APScheduler's check.
    def _run_scheduled(self, org: str, *, slot: datetime | None = None,
                       config_key: Any = None) -> SlotOutcome:
        return self.run_slot(org, slot or self.clock(), kind="scheduled")

    def trigger(self, org: str) -> concurrent.futures.Future[SlotOutcome]:
        """Run an org now, outside its schedule, through the same pool and locks."""
        if org not in self.files.configs:
            raise KeyError(org)
        done: concurrent.futures.Future[SlotOutcome] = concurrent.futures.Future()
        self.scheduler.add_job(self._run_manual, "date", run_date=self.clock(),
                               args=(org, done), id=f"manual-{org}-{uuid.uuid4().hex[:8]}",
                               misfire_grace_time=None)
        return done

    def _run_manual(self, org: str, done: concurrent.futures.Future, *,
                    slot: datetime | None = None) -> None:
        try:
            done.set_result(self.run_slot(org, slot or self.clock(), kind="manual"))
        except BaseException as err:  # noqa: BLE001 - handed to whoever waits on the trigger
            done.set_exception(err)

    def run_slot(self, org: str, slot: datetime, *, kind: str) -> SlotOutcome:
        """Claim and run one slot of one org; never raises for a failing run."""
        key = slot_key(slot) if kind == "scheduled" else f"manual:{slot_key(slot)}:{uuid.uuid4().hex[:6]}"
        if not self._enter((org, key)):
            return self._skipped(org, key, kind, "stopping")
        try:         # in flight until the claim records the end, so stop() waits for that too
            return self._claim_and_run(org, key, slot, kind)
        finally:
            self._leave((org, key))

    def _claim_and_run(self, org: str, key: str, slot: datetime, kind: str) -> SlotOutcome:
        config = self.files.configs.get(org)
        if config is None:
            return self._skipped(org, key, kind, "unknown_org")
        try:
            with self.ledger.org_lock(org) as lock:
                if lock == HELD:
                    claim = self.ledger.claim(org, key, kind)
                    if claim is None:
                        return self._skipped(org, key, kind, "claimed_elsewhere")
                    self._claimed((org, key), claim)
                    return self._run_and_record(config, claim, slot, kind)
            return self._skipped(org, key, kind, self._lock_refused(org, key, kind, lock))
        except SQLAlchemyError as err:   # the database is down: this slot is lost, say so
            log.error("slot.store_unavailable", org=org, slot=key,
                      error=f"{type(err).__name__}: {str(err).splitlines()[0]}")
            return self._skipped(org, key, kind, "store_unavailable")

    def _lock_refused(self, org: str, key: str, kind: str, lock: str) -> str:
        """Why the org's lock was taken: another replica runs this very slot (it claims the slot
        right after locking, hence the short wait), or a run of the org is still going."""
        if kind != "scheduled" or lock == RUNNING_HERE:
            return "busy"
        deadline = time.monotonic() + CLAIM_WAIT_SECONDS
        while not self.ledger.is_claimed(org, key):
            if time.monotonic() > deadline:
                return "busy"
            time.sleep(0.05)
        return "claimed_elsewhere"

    def _run_and_record(self, config: OrgConfig, claim: Claim, slot: datetime,
                        kind: str) -> SlotOutcome:
        org, started = config.org, time.monotonic()
        try:
            with bind_run(org, claim.slot):
                log.info("slot.started", slot=claim.slot, kind=kind,
                         taken_over_from=claim.taken_over_from)
                summary = self._call_runner(config, slot)
        except Exception as err:  # noqa: BLE001 - one org's failure never stops the others
            return self._failed(claim, kind, err, time.monotonic() - started)
        seconds = time.monotonic() - started
        self.ledger.finish(claim, summary.status.value, run_id=summary.run_id)
        self.metrics.record_summary(summary, seconds, time.time())
        self.metrics.slots.labels(org, "ran").inc()
        log.info("slot.finished", org=org, run_id=summary.run_id, status=summary.status.value,
                 orders=len(summary.orders), held=len(summary.held), seconds=round(seconds, 3))
        return SlotOutcome(org, claim.slot, kind, "ran", summary.status.value, summary.run_id,
                           seconds=seconds)

    def _call_runner(self, config: OrgConfig, slot: datetime) -> RunSummary:
        kwargs: dict[str, Any] = {"store": self.store, "clock": self.runner_clock(slot)}
        if self._runner_takes_stop:
            kwargs["stop"] = self.stopping
        return self.runner(config, **kwargs)

    def _failed(self, claim: Claim, kind: str, err: Exception, seconds: float) -> SlotOutcome:
        detail = f"{type(err).__name__}: {err}"
        log.error("slot.error", org=claim.org, slot=claim.slot, error=detail)
        self.ledger.finish(claim, "error", detail=detail[:2000])
        self.metrics.record_error(claim.org, err, seconds)
        self.metrics.slots.labels(claim.org, "ran").inc()
        return SlotOutcome(claim.org, claim.slot, kind, "ran", "error", detail=detail,
                           seconds=seconds)

    def _skipped(self, org: str, key: str, kind: str, outcome: str) -> SlotOutcome:
        self.metrics.slots.labels(org, outcome).inc()
        log.info("slot.skipped", org=org, slot=key, kind=kind, outcome=outcome)
        return SlotOutcome(org, key, kind, outcome)

    def _missed(self, org: str, slot: datetime) -> None:
        self.metrics.slots.labels(org, "missed").inc()
        log.warning("slot.missed", org=org, slot=slot_key(slot),
                    grace_seconds=self.settings.misfire_grace_seconds)

    def _max_instances(self, event: JobEvent) -> None:
        self.metrics.slots.labels(event.job_id, "busy").inc()
        log.info("slot.skipped", org=event.job_id, outcome="busy",
                 detail="the previous run of this org is still going")

    def _enter(self, attempt: tuple[str, str]) -> bool:
        # Checked under the same lock stop() waits on: an attempt either registers before
        # stopping is set (and stop() waits for it) or sees it set and never starts.
        with self._active_cv:
            if self.stopping.is_set():
                return False
            self._active[attempt] = None
            return True

    def _claimed(self, attempt: tuple[str, str], claim: Claim) -> None:
        with self._active_cv:
            self._active[attempt] = claim
            self.metrics.in_flight.set(sum(c is not None for c in self._active.values()))

    def _leave(self, attempt: tuple[str, str]) -> None:
        with self._active_cv:
            self._active.pop(attempt, None)
            self.metrics.in_flight.set(sum(c is not None for c in self._active.values()))
            self._active_cv.notify_all()


def _same_schedule(key: Any, config: OrgConfig) -> bool:
    return key == (config.schedule, config.timezone)


def _iso(when: datetime | None) -> str | None:
    return when.astimezone(UTC).isoformat() if when is not None else None
