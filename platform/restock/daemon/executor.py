"""An APScheduler executor that tells each job which scheduled time it is running for.

APScheduler's stock executors call ``job.func(*args, **kwargs)`` and keep the scheduled time to
themselves. Every replica must name a slot the same way to claim it exactly once, so this executor
passes the scheduled time as ``slot=`` and applies the misfire grace time against the daemon's
clock. Pool size bounds how many orgs run in parallel.
"""

from __future__ import annotations

import concurrent.futures
import logging
import sys
import traceback
from collections.abc import Callable
from datetime import datetime, timedelta

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MISSED,
    JobExecutionEvent,
)
from apscheduler.executors.base import BaseExecutor

_log = logging.getLogger("restock.daemon.executor")


class SlotExecutor(BaseExecutor):
    """Thread pool of ``max_workers``; calls ``job.func(*args, slot=run_time, **kwargs)``."""

    def __init__(self, max_workers: int, clock: Callable[[], datetime],
                 on_missed: Callable[[str, datetime], None] | None = None) -> None:
        super().__init__()
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers,
                                                           thread_name_prefix="restock-org")
        self._clock = clock
        self._on_missed = on_missed

    def _do_submit_job(self, job, run_times):
        future = self._pool.submit(self._run, job, run_times)
        future.add_done_callback(lambda done: self._finished(job.id, done))

    def _finished(self, job_id: str, future: concurrent.futures.Future) -> None:
        if future.cancelled():          # queued when the daemon began to stop
            self._run_job_success(job_id, [])
            return
        error = future.exception()
        if error is not None:
            self._run_job_error(job_id, error, error.__traceback__)
        else:
            self._run_job_success(job_id, future.result())

    def _run(self, job, run_times: list[datetime]) -> list[JobExecutionEvent]:
        events = []
        for run_time in run_times:
            if self._missed(job, run_time):
                events.append(JobExecutionEvent(EVENT_JOB_MISSED, job.id, job._jobstore_alias,
                                                run_time))
                continue
            events.append(self._call(job, run_time))
        return events

    def _missed(self, job, run_time: datetime) -> bool:
        if job.misfire_grace_time is None:
            return False
        late = self._clock() - run_time
        if late <= timedelta(seconds=job.misfire_grace_time):
            return False
        _log.warning("slot of %s at %s missed by %s", job.id, run_time, late)
        if self._on_missed is not None:
            self._on_missed(job.id, run_time)
        return True

    def _call(self, job, run_time: datetime) -> JobExecutionEvent:
        try:
            value = job.func(*job.args, slot=run_time, **job.kwargs)
        except BaseException:  # noqa: BLE001 - reported as an event; the pool thread lives on
            error, tb = sys.exc_info()[1:]
            event = JobExecutionEvent(EVENT_JOB_ERROR, job.id, job._jobstore_alias, run_time,
                                      exception=error, traceback="".join(traceback.format_tb(tb)))
            traceback.clear_frames(tb)
            return event
        return JobExecutionEvent(EVENT_JOB_EXECUTED, job.id, job._jobstore_alias, run_time,
                                 retval=value)

    def shutdown(self, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=not wait)
