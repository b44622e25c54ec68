"""Posting run summaries to every summary sink, and again later to a sink that was down.

A sink that fails does not undo the run: its orders stand, the summary stays in the store, and the
sink is owed it (``pending_summaries``) until a later run of the org delivers it.
"""

from __future__ import annotations

from restock.config import OrgConfig
from restock.connectors import SummarySink, open_connector
from restock.domain import RunSummary
from restock.errors import RestockError
from restock.log import get_logger
from restock.store import Store

log = get_logger("restock.delivery")


def deliver_summaries(config: OrgConfig, store: Store, summary: RunSummary) -> list[str]:
    """Post ``summary`` (and any owed earlier ones) to each sink; returns the problems."""
    problems: list[str] = []
    for index, ref in enumerate(config.summary_sinks):
        name = f"summary_sinks.{index} ({ref.connector})"
        try:
            sink = open_connector(config, f"summary_sinks.{index}")
        except RestockError as err:
            problems.append(f"{name}: {err}")
            continue
        with sink:
            for owed in _owed(store, config.org, name, summary.run_id):
                _post(sink, store, name, owed, problems)
            _post(sink, store, name, summary, problems)
    return problems


def _owed(store: Store, org: str, name: str, current: str) -> list[RunSummary]:
    owed = []
    for run_id, sink, _attempts in store.pending_summaries.list(org):
        if sink == name and run_id != current:
            found = store.runs.summary(run_id)
            if found is not None:
                owed.append(found)
    return owed


def _post(sink: SummarySink, store: Store, name: str, summary: RunSummary,
          problems: list[str]) -> None:
    try:
        sink.post(summary)
    except RestockError as err:
        log.warning("summary.undelivered", sink=name, summary_run=summary.run_id, error=str(err))
        store.pending_summaries.failed(summary.org, summary.run_id, name, str(err))
        problems.append(f"{name}: summary {summary.run_id} not delivered ({err}); "
                        "it is kept and sent again next run")
        return
    store.pending_summaries.delivered(summary.run_id, name)

