"""The daemon's scheduling, driven by a controllable clock (time-machine): no real waiting."""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED
from structlog.testing import capture_logs

from restock.daemon import Daemon, SlotLedger
from restock.settings import load_settings
from tests.support.daemon_kit import RecordingCycle, wait_until, write_org

START = datetime(2026, 6, 1, 5, 59, 30, tzinfo=UTC)


@pytest.fixture
def clock():
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


@pytest.fixture
def orgs_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "config" / "orgs"
    folder.mkdir(parents=True)
    return folder


class Harness:
    """A daemon over a config folder, a SQLite ledger and a recording cycle."""

    def __init__(self, orgs_dir: Path, state_url: str, replica: str = "r1", **settings) -> None:
        self.settings = load_settings(config_dir=orgs_dir.parent, state_url=state_url,
                                      replica_id=replica, misfire_grace_seconds=60, **settings)
        self.cycle = RecordingCycle()
        self.ledger = SlotLedger(state_url, replica=replica)
        self.daemon = Daemon(self.settings, runner=self.cycle, store=object(), ledger=self.ledger)
        self.done: list[tuple[str, datetime]] = []     # jobs the executor has fully released
        self.daemon.scheduler.add_listener(
            lambda event: self.done.append((event.job_id, event.scheduled_run_time)),
            EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)

    def finished(self, *jobs: tuple[str, datetime]) -> bool:
        return all(job in self.done for job in jobs)

    def at(self, clock, when: datetime) -> None:
        clock.move_to(when)
        self.daemon.scheduler.wakeup()

    def close(self) -> None:
        for gate in self.cycle.gates.values():
            gate.set()
        self.daemon.stop(timeout=5)
        self.ledger.close()


@pytest.fixture
def harness(orgs_dir: Path, tmp_path: Path):
    made: list[Harness] = []

    def make(replica: str = "r1", url: str | None = None, **settings) -> Harness:
        made.append(Harness(orgs_dir, url or f"sqlite:///{tmp_path}/state.db", replica,
                            **settings))
        return made[-1]

    yield make
    for item in made:
        item.close()


def at_(hour: int, minute: int, second: int = 0) -> datetime:
    return START.replace(hour=hour, minute=minute, second=second)


START_SLOT = "2026-06-01T05:59:30Z"


def test_org_runs_at_its_cron_slot_with_the_slot_as_planning_instant(clock, orgs_dir, harness):
    write_org(orgs_dir, "acme", "0 6 * * *")
    h = harness()
    h.daemon.start()
    assert h.daemon.next_run("acme") == at_(6, 0)
    h.at(clock, at_(6, 0, 0))
    wait_until(lambda: h.ledger.claims("acme") and h.ledger.claims("acme")[0]["status"] == "ok")
    assert h.cycle.calls == [("acme", at_(6, 0))]
    claim = h.ledger.claims("acme")[0]
    assert (claim["slot"], claim["kind"], claim["replica"]) == ("2026-06-01T06:00:00Z",
                                                                "scheduled", "r1")
    assert h.daemon.next_run("acme") == at_(6, 0) + timedelta(days=1)


def test_schedule_is_read_in_the_org_timezone(clock, orgs_dir, harness):
    write_org(orgs_dir, "berlin", "0 6 * * *", tz="Europe/Berlin")      # CEST: UTC+2
    write_org(orgs_dir, "newyork", "30 5 * * 1-5", tz="America/New_York")  # EDT: UTC-4
    h = harness()
    h.daemon.start()
    assert h.daemon.next_run("berlin") == datetime(2026, 6, 2, 4, 0, tzinfo=UTC)
    assert h.daemon.next_run("newyork") == datetime(2026, 6, 1, 9, 30, tzinfo=UTC)


def test_missed_slots_within_grace_coalesce_into_one_run(clock, orgs_dir, harness):
    write_org(orgs_dir, "acme", "* * * * *")
    h = harness()
    clock.move_to(at_(6, 0, 30))
    h.daemon.start()
    h.at(clock, at_(6, 3, 30))            # 06:01, 06:02 and 06:03 all passed unseen
    wait_until(lambda: h.cycle.calls, what="the coalesced run")
    wait_until(lambda: h.daemon.active_orgs() == [])
    assert h.cycle.calls == [("acme", at_(6, 3))]
    assert [c["slot"] for c in h.ledger.claims("acme")] == ["2026-06-01T06:03:00Z"]


def test_a_slot_later_than_the_grace_time_is_missed_not_run(clock, orgs_dir, harness):
    write_org(orgs_dir, "acme", "0 6 * * *")
    h = harness()
    h.daemon.start()
    h.at(clock, at_(6, 5))                # 300 s late, grace is 60 s
    wait_until(lambda: b'restock_slots_total{org="acme",outcome="missed"} 1.0'
               in h.daemon.metrics.render(), what="the missed slot")
    assert h.cycle.calls == [] and h.ledger.claims("acme") == []
    assert h.daemon.next_run("acme") == at_(6, 0) + timedelta(days=1)


def test_one_run_per_org_at_a_time_and_a_bounded_pool(clock, orgs_dir, harness):
    for org in ("a", "b", "c"):
        write_org(orgs_dir, org, "* * * * *")
    h = harness(max_parallel_orgs=2)
    h.cycle.gates = {"a": threading.Event(), "b": threading.Event()}
    h.daemon.start()
    h.at(clock, at_(6, 0))
    wait_until(lambda: h.cycle.running == {"a", "b"}, what="a and b to start")
    assert h.cycle.slots("c") == []                      # the pool is full
    h.cycle.gates["b"].set()
    wait_until(lambda: h.finished(("b", at_(6, 0)), ("c", at_(6, 0))), what="b, then c")
    h.at(clock, at_(6, 1))                               # a is still in its 06:00 run
    wait_until(lambda: h.cycle.slots("b") == [at_(6, 0), at_(6, 1)]
               and h.cycle.slots("c") == [at_(6, 0), at_(6, 1)], what="b and c at 06:01")
    assert h.cycle.slots("a") == [at_(6, 0)]
    assert b'restock_slots_total{org="a",outcome="busy"} 1.0' in h.daemon.metrics.render()
    assert h.cycle.peak_parallel == 2
    h.cycle.gates["a"].set()


def test_one_org_failing_never_stops_another_or_its_own_next_slot(clock, orgs_dir, harness):
    write_org(orgs_dir, "bad", "* * * * *")
    write_org(orgs_dir, "good", "* * * * *")
    h = harness()
    h.cycle.failing.add("bad")
    h.daemon.start()
    for minute in (0, 1):
        h.at(clock, at_(6, minute))
        wait_until(lambda m=minute: h.finished(("bad", at_(6, m)), ("good", at_(6, m))),
                   what=f"both orgs at 06:0{minute}")
    statuses = {(c["org"], c["slot"][11:16]): c["status"] for c in h.ledger.claims()}
    assert statuses == {("bad", "06:00"): "error", ("bad", "06:01"): "error",
                        ("good", "06:00"): "ok", ("good", "06:01"): "ok"}
    assert "RuntimeError: bad exploded" in h.ledger.claims("bad")[0]["detail"]
    metrics = h.daemon.metrics.render().decode()
    assert 'restock_runs_total{org="bad",status="error"} 2.0' in metrics
    assert 'restock_runs_total{org="good",status="ok"} 2.0' in metrics


def _rewrite(path: Path, text: str) -> None:
    before = path.stat().st_mtime_ns
    path.write_text(text)
    os.utime(path, ns=(before + 10**9, before + 10**9))   # a coarse-mtime filesystem still sees it


def test_hot_reload_edit_invalid_edit_add_and_delete(clock, orgs_dir, harness):
    acme = write_org(orgs_dir, "acme", "0 6 * * *")
    h = harness()
    h.daemon.start()
    _rewrite(acme, acme.read_text().replace("0 6 * * *", "30 7 * * *"))
    assert [c.org for c in h.daemon.reload().loaded] == ["acme"]
    assert h.daemon.next_run("acme") == at_(7, 30)

    _rewrite(acme, acme.read_text().replace("timezone: UTC", "timezone: Mars/Olympus"))
    with capture_logs() as logs:
        h.daemon.reload()
    rejected = [e for e in logs if e["event"] == "config.rejected"]
    assert len(rejected) == 1
    assert "orgs/acme.yaml:3: timezone: unknown time zone 'Mars/Olympus'" in rejected[0]["error"]
    assert h.daemon.files.configs["acme"].schedule == "30 7 * * *"
    assert h.daemon.next_run("acme") == at_(7, 30)

    write_org(orgs_dir, "beta", "15 6 * * *")
    h.daemon.reload()
    assert h.daemon.next_run("beta") == at_(6, 15)
    acme.unlink()
    assert h.daemon.reload().removed == ["acme"]
    assert h.daemon.next_run("acme") is None and "acme" not in h.daemon.files.configs
    h.at(clock, at_(7, 30))
    h.at(clock, at_(6, 15) + timedelta(days=1))
    wait_until(lambda: h.cycle.calls, what="beta's run")
    assert [org for org, _ in h.cycle.calls] == ["beta"]


def test_manual_trigger_runs_now_and_refuses_a_busy_org(clock, orgs_dir, harness):
    write_org(orgs_dir, "acme", "0 6 * * *")
    h = harness()
    h.cycle.gates["acme"] = threading.Event()
    h.daemon.start()
    first = h.daemon.trigger("acme")
    wait_until(lambda: h.cycle.running == {"acme"})
    second = h.daemon.trigger("acme").result(5)
    assert second.outcome == "busy"
    h.cycle.gates["acme"].set()
    outcome = first.result(5)
    assert (outcome.outcome, outcome.status, outcome.kind) == ("ran", "ok", "manual")
    assert outcome.slot.startswith(f"manual:{START_SLOT}")
    with pytest.raises(KeyError):
        h.daemon.trigger("nobody")


def test_stop_lets_the_run_in_flight_finish_and_takes_no_new_runs(clock, orgs_dir, harness):
    write_org(orgs_dir, "acme", "* * * * *")
    h = harness()
    h.cycle.gates["acme"] = threading.Event()
    h.daemon.start()
    h.at(clock, at_(6, 0))
    wait_until(lambda: h.cycle.running == {"acme"})
    result: list[bool] = []
    stopper = threading.Thread(target=lambda: result.append(h.daemon.stop(timeout=5)))
    stopper.start()
    wait_until(h.daemon.stopping.is_set)
    assert h.daemon.run_slot("acme", at_(6, 1), kind="scheduled").outcome == "stopping"
    h.cycle.gates["acme"].set()
    stopper.join(5)
    assert result == [True]
    assert [(c["slot"], c["status"]) for c in h.ledger.claims()] == [("2026-06-01T06:00:00Z",
                                                                      "ok")]
    assert h.cycle.slots("acme") == [at_(6, 0)]


def test_stop_gives_up_at_the_timeout_when_a_run_hangs(clock, orgs_dir, harness):
    write_org(orgs_dir, "acme", "* * * * *")
    h = harness()
    h.cycle.gates["acme"] = threading.Event()
    h.daemon.start()
    h.at(clock, at_(6, 0))
    wait_until(lambda: h.cycle.running == {"acme"})
    assert h.daemon.stop(timeout=0.2) is False
    claim = h.ledger.claims("acme")[0]
    assert (claim["status"], claim["detail"]) == ("abandoned",
                                                  "still running at the shutdown timeout")


def _replicas_run_every_slot_once(clock, orgs_dir, harness, url: str) -> None:
    for org in ("a", "b", "c"):
        write_org(orgs_dir, org, "* * * * *")
    one, two = harness("r1", url), harness("r2", url)
    one.daemon.start()
    two.daemon.start()
    for minute in range(4):
        one.at(clock, at_(6, minute))
        two.daemon.scheduler.wakeup()
        slot = [(org, at_(6, minute)) for org in "abc"]
        wait_until(lambda s=slot: one.finished(*s) and two.finished(*s),
                   what=f"both replicas at 06:0{minute}")
    ran = sorted(one.cycle.calls + two.cycle.calls)
    expected = sorted((org, at_(6, m)) for org in ("a", "b", "c") for m in range(4))
    assert ran == expected                                   # each slot exactly once
    assert {c["status"] for org in "abc" for c in one.ledger.claims(org)} == {"ok"}
    outcomes = _slot_outcomes(one) + _slot_outcomes(two)
    for org in "abc":               # the loser of each slot says why it did not run it
        assert (outcomes[(org, "ran")], outcomes[(org, "claimed_elsewhere")]) == (4.0, 4.0)
        assert outcomes[(org, "busy")] == 0


def _slot_outcomes(h: Harness):
    from collections import Counter

    found = Counter()
    for metric in h.daemon.metrics.slots.collect():
        for sample in metric.samples:
            if sample.name == "restock_slots_total":
                found[(sample.labels["org"], sample.labels["outcome"])] += sample.value
    return found


def test_two_replicas_on_sqlite_run_every_slot_once(clock, orgs_dir, harness, tmp_path):
    _replicas_run_every_slot_once(clock, orgs_dir, harness, f"sqlite:///{tmp_path}/shared.db")


@pytest.mark.postgres
def test_two_replicas_on_postgres_run_every_slot_once(clock, orgs_dir, harness, pg_url):
    _replicas_run_every_slot_once(clock, orgs_dir, harness, pg_url)


@pytest.mark.postgres
@pytest.mark.parametrize("left_as", ["running", "abandoned"])
def test_a_dead_replicas_unfinished_slot_is_taken_over_on_postgres(clock, orgs_dir, harness,
                                                                   pg_url, left_as):
    org = f"orphan-{left_as}"
    write_org(orgs_dir, org, "0 6 * * *")
    dead = SlotLedger(pg_url, replica="dead-replica")
    try:
        claim = dead.claim(org, "2026-06-01T06:00:00Z", "scheduled")
        if left_as == "abandoned":       # it hit its shutdown timeout mid-run
            dead.finish(claim, "abandoned", detail="still running at the shutdown timeout")
    finally:
        dead.close()                     # "running": the process died mid-run
    h = harness("live", pg_url)
    h.daemon.start()
    h.at(clock, at_(6, 0))
    wait_until(lambda: h.ledger.claims(org)[0]["status"] == "ok", what="the takeover")
    claim = h.ledger.claims(org)[0]
    assert (claim["replica"], claim["detail"]) == ("live", "taken over from dead-replica")
    assert h.cycle.calls == [(org, at_(6, 0))]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/claims.db"
    return request.getfixturevalue("pg_url")


def test_the_claims_table_is_migrated_once_and_reopening_is_harmless(any_url):
    import sqlalchemy as sa

    for _ in range(2):
        ledger = SlotLedger(any_url, replica="r1")
        with ledger.engine.connect() as conn:
            versions = conn.execute(sa.text(
                "SELECT version_num FROM restock_daemon_schema_version")).scalars().all()
        ledger.close()
        assert versions == ["daemon_0001"]


@pytest.mark.parametrize(("errors", "expected"), [
    (["order o-1 to atlas: outcome unknown (order webhook unavailable: connection failed)"],
     {"unavailable": 1}),
    (["credentials rejected by inventree (HTTP 401)"], {"credentials_rejected": 1}),
    (["order o-2 to kessler gmbh refused: 422 unknown supplier"], {"refused": 1}),
    (["source.path: warehouse folder /x does not exist", "stopping: planned orders stay"], {}),
])
def test_connector_failures_are_counted_by_kind_from_a_runs_errors(errors, expected):
    from restock.daemon.metrics import connector_problems

    assert dict(connector_problems(errors)) == expected


def test_a_connector_exception_escaping_the_run_is_counted_by_kind():
    from restock.daemon.metrics import Metrics
    from restock.errors import ConnectorError, ConnectorUnavailable

    metrics = Metrics()
    metrics.record_error("acme", ConnectorUnavailable("erp", "timed out"), 1.0)
    metrics.record_error("acme", ConnectorError("erp", "bad JSON"), 1.0)
    metrics.record_error("acme", RuntimeError("a bug"), 1.0)
    text = metrics.render().decode()
    assert 'restock_connector_errors_total{kind="unavailable",org="acme"} 1.0' in text
    assert 'restock_connector_errors_total{kind="error",org="acme"} 1.0' in text
    assert 'restock_runs_total{org="acme",status="error"} 3.0' in text


def test_an_unreachable_state_store_is_one_line_and_a_lost_slot_is_reported(clock, orgs_dir,
                                                                             harness):
    import sqlalchemy as sa

    from restock.errors import Fatal

    dead_url = "postgresql+psycopg://nobody@127.0.0.1:1/none"
    with pytest.raises(Fatal, match=r"^state store postgresql\+psycopg://nobody@127.0.0.1:1/none "
                                    r"unreachable: .+"):
        SlotLedger(dead_url, replica="r1")
    write_org(orgs_dir, "acme", "0 6 * * *")
    h = harness()
    h.daemon.start()
    h.ledger.engine.dispose()
    h.ledger.engine = sa.create_engine(dead_url)      # the database goes away mid-life
    with capture_logs() as logs:
        outcome = h.daemon.run_slot("acme", at_(6, 0), kind="scheduled")
    assert outcome.outcome == "store_unavailable" and h.cycle.calls == []
    assert [e["event"] for e in logs if e["log_level"] == "error"] == ["slot.store_unavailable"]
