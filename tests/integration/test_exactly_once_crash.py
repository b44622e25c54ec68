"""kill -9 restock at random points of a run, restart it, and count what reached the downstream
system: every expected order exactly once — zero duplicates, zero lost — over 100+ kills.

A fork server (tests/support/crash_harness.py) runs each cycle in a child process over a generated
30-SKU warehouse in auto mode, with a webhook order sink pointing at a real HTTP receiver on
127.0.0.1 that counts every complete POST per Idempotency-Key. Children die by SIGKILL at a
seeded random hook point (before/after every ledger write and sink call) or after a seeded random
time. After each round (a few kills, then a run that is left to finish) the receiver must have
received each key exactly once and hold exactly the orders of an uncrashed reference run, and the
ledger must hold every one of them as submitted. The same runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

from restock.demo import generate
from restock.store import OrderStatus, open_store
from tests.support.dates import PINNED_END
from tests.support.downstream import CountingReceiver
from tests.support.loopback import serve_asgi

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]
KILLS = int(os.environ.get("RESTOCK_CRASH_KILLS", "100"))
KILLS_PG = int(os.environ.get("RESTOCK_CRASH_KILLS_PG", "24"))    # the same on PostgreSQL
KILLS_PER_ROUND = 4
SEED = 20261125
ORG = "crash"


class Harness:
    """The fork server: one long-lived process, one forked child per cycle."""

    def __init__(self, log: Path) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self._log = log.open("wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.support.crash_harness"],
                                     cwd=ROOT, env=env, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self._log, text=True)
        assert json.loads(self.proc.stdout.readline()) == {"ready": True}

    def run(self, **command: object) -> dict:
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline()
        assert answer, "the crash harness died"
        return json.loads(answer)

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)
        self._log.close()


@pytest.fixture(scope="module")
def receiver():
    downstream = CountingReceiver()
    with serve_asgi(downstream.app()) as url:
        yield downstream, url


@pytest.fixture(scope="module")
def org_file(tmp_path_factory, receiver):
    folder = tmp_path_factory.mktemp("crash")
    generate(folder / "warehouse", seed=11, skus=30, end=PINNED_END)
    _, url = receiver
    path = folder / f"{ORG}.yaml"
    path.write_text(f"""org: {ORG}
mode: auto
source: {{connector: files, path: ./warehouse, as_of: history_end}}
order_sink:
  connector: webhook
  url: {url}/orders
  lookup_url: {url}/orders/{{key}}
  timeout: {{connect: 2, read: 5, total: 10}}
  retries: {{attempts: 2, backoff: 0.05, max_wait: 1}}
forecast: {{statsmodels_seconds: 0, history_days: 60}}
policy: {{max_bid: 100000}}
guard: {{max_multiple_of_usual: 1000, min_forecast_confidence: 0}}
""")
    path.chmod(0o640)
    return path


@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    running = Harness(tmp_path_factory.mktemp("harness") / "harness.log")
    yield running
    running.close()


def _ledger(state: str) -> dict[str, tuple[str, dict[str, float]]]:
    with open_store(state) as store:
        return {e.key: (e.status, {line.sku: line.quantity for line in e.order.lines})
                for e in store.ledger.list(ORG)}


def _quantities(downstream: CountingReceiver) -> dict[str, dict[str, float]]:
    return {key: {line["sku"]: line["quantity"] for line in order["body"]["lines"]}
            for key, order in downstream.orders.items()}


@pytest.fixture(scope="module")
def reference(harness, org_file, receiver, tmp_path_factory):
    """An uncrashed run: the orders every crashed round must end with, its steps and duration."""
    downstream, _ = receiver
    folder = tmp_path_factory.mktemp("reference")
    trace = folder / "trace"
    started = time.monotonic()
    answer = harness.run(config=str(org_file), state=f"sqlite:///{folder / 'state.db'}",
                         trace=str(trace))
    duration = time.monotonic() - started
    assert answer == {"killed": False, "exit": 0}
    expected = _quantities(downstream)
    assert len(expected) >= 3, "the warehouse should need orders from several suppliers"
    assert not downstream.duplicates()
    steps = len(trace.read_text().splitlines())
    downstream.clear()
    return expected, steps, duration


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request, tmp_path):
    """(kills wanted, a fresh state URL per round) for each state store."""
    if request.param == "sqlite":
        yield KILLS, lambda n: f"sqlite:///{tmp_path / f'round{n}.db'}"
        return
    url = request.getfixturevalue("pg_url")
    yield KILLS_PG, lambda n: _emptied(url)


def backend_name(fresh_state) -> str:
    return fresh_state(0).split(":", 1)[0].split("+", 1)[0]


def _emptied(url: str) -> str:
    """The PostgreSQL test database with every restock table emptied (a fresh org state)."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        tables = [t for t in sa.inspect(conn).get_table_names() if "schema_version" not in t]
        if tables:
            conn.execute(sa.text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " CASCADE"))
    engine.dispose()
    return url


def test_kill_9_at_random_points_never_duplicates_or_loses_an_order(
        harness, org_file, receiver, reference, tmp_path, backend):
    downstream, _ = receiver
    expected, steps, duration = reference
    wanted, fresh_state = backend
    rng = random.Random(SEED)
    firsts = rng.sample(range(1, steps + 1), steps)      # every point of a run, in turn
    kills, where, rounds = 0, Counter(), 0
    while kills < wanted:
        rounds += 1
        downstream.clear()
        state = fresh_state(rounds)
        trace = tmp_path / f"round{rounds}.trace"
        first = firsts[(rounds - 1) % steps]
        kills += _crash_round(harness, rng, org_file, state, trace, (first, steps, duration),
                              where)
        problems = _check(downstream, state, expected)
        assert not problems, f"round {rounds} (trace {trace}):\n" + "\n".join(problems)
    print(f"\ncrash test ({backend_name(fresh_state)}): {kills} kills in {rounds} rounds, "
          f"0 duplicates, 0 lost; kill points: {dict(sorted(where.items()))}")
    assert sum(where.values()) == kills >= wanted
    covered = {point.split("->")[0] for point in where}
    if wanted >= 100:         # enough kills to have met every kind of point
        assert {"before WebhookOrderSink.submit", "after WebhookOrderSink.submit",
                "after Ledger.record", "before Ledger.transition"} <= covered, where


def _crash_round(harness, rng, org_file, state, trace, shape, where) -> int:
    """Kill runs of one fresh org state a few times, then let one finish; returns the kills.

    The first kill of a round hits the given step of a fresh run (so over the rounds every
    point of a run is hit); later ones a random step or a random moment.
    """
    first, steps, duration = shape
    kills = 0
    while kills < KILLS_PER_ROUND:
        by_timer = kills > 0 and rng.random() < 0.3
        command = {"config": str(org_file), "state": state, "trace": str(trace)}
        if by_timer:
            command["kill_after"] = rng.uniform(0.0, duration * 1.05)
        else:
            command["kill_step"] = first if kills == 0 else rng.randint(1, steps)
        lines_before = _trace_length(trace)
        answer = harness.run(**command)
        if not answer["killed"]:
            assert answer["exit"] == 0, answer
            return kills
        kills += 1
        where["timer" if by_timer else _last_point(trace, lines_before)] += 1
    answer = harness.run(config=str(org_file), state=state, trace=str(trace))
    assert answer == {"killed": False, "exit": 0}
    return kills


def _trace_length(trace: Path) -> int:
    return len(trace.read_text().splitlines()) if trace.exists() else 0


def _last_point(trace: Path, before: int) -> str:
    lines = trace.read_text().splitlines()[before:]
    return lines[-1].split(" ", 1)[1] if lines else "before any hook"


def _check(downstream: CountingReceiver, state: str, expected: dict) -> list[str]:
    problems = [f"duplicate: key {key} POSTed {n} times"
                for key, n in downstream.duplicates().items()]
    ledger = _ledger(state)
    got = _quantities(downstream)
    problems += [f"lost: {key} never reached the receiver" for key in expected if key not in got]
    problems += [f"unexpected order {key} downstream" for key in got if key not in expected]
    problems += [f"{key}: quantities {got[key]} differ from the uncrashed run's {want}"
                 for key, want in expected.items() if key in got and got[key] != want]
    problems += [f"ledger: {key} is {status}, not submitted" for key, (status, _) in ledger.items()
                 if status != OrderStatus.SUBMITTED]
    problems += [f"ledger lacks {key}" for key in expected if key not in ledger]
    return problems
