"""The cycle end to end on a generated warehouse: real files, a real SQLite store, real HTTP
receivers on loopback. Planning dates are pinned in the org file, so results do not depend on
today's date."""

from __future__ import annotations

import gzip
import json
import shutil
import threading
from contextlib import closing
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from restock.approval import approve, reject
from restock.config import load_org
from restock.cycle import run_org
from restock.demo import generate
from restock.domain import RunStatus
from restock.store import OrderStatus, open_store
from tests.support.loopback import serve_asgi
from tests.support.receivers import OrderReceiver

S = OrderStatus
HISTORY_END = date(2026, 6, 30)
AS_OF = HISTORY_END + timedelta(days=1)


@pytest.fixture(scope="module")
def warehouse_template(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("template") / "warehouse"
    generate(folder, skus=30, end=HISTORY_END)
    return folder


@pytest.fixture
def org_dir(tmp_path, warehouse_template) -> Path:
    import shutil

    shutil.copytree(warehouse_template, tmp_path / "warehouse")
    (tmp_path / "orgs").mkdir()
    return tmp_path


@pytest.fixture
def store(tmp_path):
    opened = open_store(f"sqlite:///{tmp_path / 'state.sqlite'}")
    yield opened
    opened.close()


def write_org(folder: Path, *, org: str = "acme", mode: str = "auto", as_of: date = AS_OF,
              sink: str = "{connector: files, path: ../outbox}", extra: str = "",
              summary: str = "{connector: files, path: ../summaries}") -> Path:
    path = folder / "orgs" / f"{org}.yaml"
    path.write_text(f"org: {org}\nmode: {mode}\ncurrency: EUR\n"
                    f"source: {{connector: files, path: ../warehouse, as_of: {as_of}}}\n"
                    f"order_sink: {sink}\nsummary_sinks:\n  - {summary}\n"
                    "policy: {budget: 100000}\nforecast: {statsmodels_seconds: 0}\n" + extra)
    path.chmod(0o640)
    return path


def outbox(folder: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted((folder / "outbox").glob("*.json"))}


def test_an_auto_run_sends_one_order_per_supplier_and_records_why(org_dir, store):
    config = load_org(write_org(org_dir))
    summary = run_org(config, store=store)
    assert summary.status == RunStatus.OK, summary.errors
    assert summary.as_of == AS_OF and summary.orders
    assert all(order.held_reasons for order in summary.held)
    sent = outbox(org_dir)
    assert set(sent) == {o.idempotency_key for o in summary.orders}
    assert len({o.supplier for o in summary.orders}) == len(summary.orders)
    ledger = store.ledger.list("acme")
    assert {e.key for e in ledger if e.status == S.SUBMITTED} == set(sent)
    assert {e.order_id for e in ledger if e.status == S.HELD} == {o.order_id for o in summary.held}
    assert summary.spend == pytest.approx(sum(o.total for o in summary.orders), abs=0.01)
    assert summary.spend <= 100000
    for order in summary.orders:
        for line in order.lines:
            codes = {r.code for r in line.reasons}
            assert {"forecast", "safety_stock"} <= codes, (line.sku, codes)
            assert line.quantity > 0 and line.quantity % line.pack_size == pytest.approx(0)
    assert store.runs.summary(summary.run_id).spend == summary.spend
    assert (org_dir / "summaries" / f"{summary.run_id}.json").is_file()
    catalog = store.models.for_run(summary.run_id)
    assert len(catalog) == summary.stats["series"] == 30
    by_sku = {e.sku: (e.model, e.chosen_by) for e in catalog}
    for line in (line for order in summary.orders for line in order.lines):
        said = next(r for r in line.reasons if r.code == "forecast")
        assert (said.data["model"], said.data["chosen_by"]) == by_sku[line.sku]
        assert f" by {said.data['model']}" in said.message
    assert all(e.window_end == HISTORY_END and e.observations > 0 for e in catalog)
    # the history window counts back from the pinned planning date, not from today
    assert min(e.window_start for e in catalog) == AS_OF - timedelta(days=730)


def test_a_rerun_of_the_same_slot_orders_nothing_more(org_dir, store):
    config = load_org(write_org(org_dir))
    first = run_org(config, store=store)
    before, ledger = outbox(org_dir), [(e.order_id, e.status) for e in store.ledger.list("acme")]
    second = run_org(config, store=store)
    assert second.status == RunStatus.OK and second.orders == [] and second.held == []
    assert outbox(org_dir) == before
    assert [(e.order_id, e.status) for e in store.ledger.list("acme")] == ledger
    assert first.orders


def test_the_next_day_counts_its_own_orders_as_on_order(org_dir, store):
    first = run_org(load_org(write_org(org_dir)), store=store)
    ordered = {line.sku for o in first.orders for line in o.lines}
    second = run_org(load_org(write_org(org_dir, as_of=AS_OF + timedelta(days=1))), store=store)
    again = {line.sku for o in second.orders + second.held for line in o.lines}
    assert ordered and not ordered & again
    assert second.previous_run_id == first.run_id
    # the accuracy trend: the first run's own point (read from its stored summary), then this one's
    assert [p.run_id for p in first.accuracy] == [first.run_id]
    assert second.accuracy[0] == first.accuracy[-1]
    assert [p.run_id for p in second.accuracy] == [first.run_id, second.run_id]


def test_approval_mode_holds_everything_until_a_person_decides(org_dir, store):
    config = load_org(write_org(org_dir, mode="approval"))
    summary = run_org(config, store=store)
    assert summary.orders == [] and len(summary.held) >= 2
    assert outbox(org_dir) == {}
    assert all(o.held_reasons[0].code == "approval_mode" for o in summary.held)
    first, second = summary.held[0], summary.held[1]
    sku = first.lines[0].sku
    decision = approve(store, config, first.order_id, actor="alice",
                       quantities={sku: first.lines[0].quantity * 2}, comment="ok")
    assert decision.sent and decision.entry.status == S.SUBMITTED
    assert outbox(org_dir)[first.idempotency_key]["lines"][0]["quantity"] == \
        first.lines[0].quantity * 2
    reject(store, config, second.order_id, actor="bob", reason="too early")
    assert store.ledger.get(second.order_id).status == S.REJECTED
    assert set(outbox(org_dir)) == {first.idempotency_key}
    audit = store.ledger.events(first.order_id)
    assert ("alice", "held", "approved") in [(e.actor, e.from_status, e.to_status) for e in audit]


def test_a_held_order_nobody_approves_expires(org_dir, store):
    config = load_org(write_org(org_dir, mode="approval",
                                extra="guard: {approval_expires_hours: 1}\n"))
    held = run_org(config, store=store).held[0]
    later = datetime.now(UTC) + timedelta(hours=2)
    run_org(config, store=store, clock=lambda: later)
    assert store.ledger.get(held.order_id).status == S.EXPIRED


def test_a_dry_run_plans_and_reports_but_writes_no_order(org_dir, store):
    summary = run_org(load_org(write_org(org_dir)), store=store, dry_run=True)
    assert summary.mode == "dry_run" and summary.orders == []
    assert summary.held and all(o.status in {"planned", "held"} for o in summary.held)
    assert store.ledger.list("acme") == [] and outbox(org_dir) == {}


def test_a_broken_source_fails_the_run_and_sends_nothing(org_dir, store):
    (org_dir / "warehouse" / "positions.csv").write_text("sku,location,allocated\nX,main,0\n")
    summary = run_org(load_org(write_org(org_dir)), store=store)
    assert summary.status == RunStatus.FAILED and summary.orders == []
    assert any("positions.csv:1: on_hand: required column is missing" in e
               for e in summary.errors)
    assert store.ledger.list("acme") == []
    assert store.runs.list("acme")[0].status == "failed"


def test_one_orgs_failure_leaves_another_untouched(org_dir, store):
    good = load_org(write_org(org_dir, org="good"))
    bad = load_org(write_org(org_dir, org="bad").parent / "bad.yaml")
    (org_dir / "bad-warehouse").mkdir()
    bad = bad.model_copy(update={"connector_settings": {
        **bad.connector_settings,
        "source": bad.connector_settings["source"].model_copy(update={"path": "../nowhere"})}})
    assert run_org(bad, store=store).status == RunStatus.FAILED
    assert run_org(good, store=store).status == RunStatus.OK
    assert store.ledger.list("bad") == [] and store.ledger.list("good")


def test_an_interrupted_submission_is_reconciled_not_resent(org_dir, store):
    receiver = OrderReceiver(fail_after_store=1)
    with serve_asgi(receiver.app()) as url:
        sink = (f"{{connector: webhook, url: '{url}/orders', lookup_url: '{url}/orders/{{key}}', "
                "retries: {attempts: 1}}")
        config = load_org(write_org(org_dir, sink=sink))
        first = run_org(config, store=store)
        unknown = store.ledger.list("acme", [S.SUBMITTING])
        assert len(unknown) == 1 and first.status == RunStatus.PARTIAL
        second = run_org(config, store=store)
        assert store.ledger.list("acme", [S.SUBMITTING]) == []
        assert unknown[0].order_id in {o.order_id for o in second.orders}
        posts = [r["headers"]["idempotency-key"] for r in receiver.requests if "body" in r]
    keys = {e.key for e in store.ledger.list("acme")}
    assert set(receiver.orders) == keys
    assert sorted(posts) == sorted(set(posts)), "no key may be posted twice"


def test_a_stop_before_submission_leaves_orders_for_the_next_run(org_dir, store):
    config = load_org(write_org(org_dir))
    stop = threading.Event()
    stop.set()
    first = run_org(config, store=store, stop=stop)
    assert first.orders == [] and outbox(org_dir) == {}
    waiting = store.ledger.list("acme", [S.APPROVED])
    assert waiting
    second = run_org(config, store=store)
    assert {o.order_id for o in second.orders} == {e.order_id for e in waiting}
    assert len(outbox(org_dir)) == len(waiting)


def test_a_summary_sink_that_is_down_is_owed_the_summary(org_dir, store):
    receiver = OrderReceiver()
    with serve_asgi(receiver.app()) as url:
        down = "{connector: webhook, url: 'http://127.0.0.1:9/summaries', retries: {attempts: 1}}"
        first = run_org(load_org(write_org(org_dir, summary=down)), store=store)
        assert first.status == RunStatus.PARTIAL and first.orders
        assert store.pending_summaries.list("acme")[0][0] == first.run_id
        up = f"{{connector: webhook, url: '{url}/summaries'}}"
        second = run_org(load_org(write_org(org_dir, summary=up)), store=store)
    delivered = [r["body"]["run_id"] for r in receiver.requests if r.get("body")]
    assert delivered == [first.run_id, second.run_id]
    assert store.pending_summaries.list("acme") == []


def test_an_empty_history_plans_nothing_from_nothing(org_dir, store):
    (org_dir / "warehouse" / "history.csv").write_text("sku,location,date,quantity\n")
    for name in ("history.csv.gz", "history.parquet"):
        (org_dir / "warehouse" / name).unlink(missing_ok=True)
    summary = run_org(load_org(write_org(org_dir)), store=store)
    assert summary.status != RunStatus.FAILED, summary.errors
    for order in summary.orders + summary.held:
        for line in order.lines:   # without consumption only a shortfall already there is ordered
            assert line.inventory_position < 0 or line.forecast_lead_review == 0


def test_bad_history_rows_are_quarantined_and_named_in_the_summary(org_dir, store):
    packed = org_dir / "warehouse" / "history.csv.gz"
    rows = gzip.decompress(packed.read_bytes()).decode().splitlines()
    packed.unlink()
    history = org_dir / "warehouse" / "history.csv"
    sku = rows[1].split(",")[0]
    history.write_text("\n".join([*rows, f"{sku},main,2026-06-29,-5", "NOPE-1,main,2026-06-29,3",
                                  f"{sku},main,2026-06-28,nan"]) + "\n")
    summary = run_org(load_org(write_org(org_dir)), store=store)
    assert summary.status == RunStatus.PARTIAL
    places = {q.record.split(" ")[0]: q.reason for q in summary.quarantined}
    n = len(rows)
    assert set(places) >= {f"history.csv:{n + 1}", f"history.csv:{n + 2}", f"history.csv:{n + 3}"}
    text = (org_dir / "summaries" / f"{summary.run_id}.md").read_text()
    assert "quarantine" in text.lower()


def test_guarded_lines_wait_apart_and_the_rest_of_the_supplier_order_goes(org_dir, store):
    config = load_org(write_org(org_dir, extra="guard: {max_multiple_of_usual: 1.0}\n"))
    summary = run_org(config, store=store)
    held_skus = {line.sku for o in summary.held for line in o.lines}
    assert held_skus and summary.orders, "the tight guard should hold some lines, not all"
    for order in summary.held:
        flagged = {r.data.get("sku") for r in order.held_reasons}
        assert {line.sku for line in order.lines} == flagged
    for order in summary.orders:
        assert not {line.sku for line in order.lines} & held_skus
    split = {o.supplier for o in summary.held} & {o.supplier for o in summary.orders}
    assert split, "some supplier should have both a sent part and a part under review"
    assert len({o.idempotency_key for o in summary.orders + summary.held}) == \
        len(summary.orders) + len(summary.held)
    again = run_org(config, store=store)
    assert again.orders == [] and again.held == []


def test_an_offer_the_planner_refuses_is_reported_and_never_ordered(org_dir, store):
    offers = org_dir / "warehouse" / "offers.csv"
    rows = offers.read_text().splitlines()
    header = rows[0].split(",")
    first = rows[1].split(",")
    sku = first[header.index("sku")]
    kept = [rows[0]] + [r for r in rows[1:] if r.split(",")[header.index("sku")] != sku]
    first[header.index("pack_size")] = "0"
    offers.write_text("\n".join([*kept, ",".join(first)]) + "\n")
    summary = run_org(load_org(write_org(org_dir)), store=store)
    named = [q for q in summary.quarantined if sku in q.record or sku in q.reason]
    assert named, summary.quarantined
    assert sku not in {line.sku for o in summary.orders + summary.held for line in o.lines}


def test_the_cli_approves_and_rejects_by_order_id_alone(org_dir, store, monkeypatch, capsys):
    from restock.cli import main

    summary = run_org(load_org(write_org(org_dir, mode="approval")), store=store)
    first, second = summary.held[0], summary.held[1]
    monkeypatch.setenv("RESTOCK_STATE_URL", str(store.engine.url))
    assert main(["approve", first.order_id, "--config", str(org_dir), "--as", "alice"]) == 0
    assert main(["reject", second.order_id, "--config", str(org_dir), "--reason", "later"]) == 0
    assert main(["approve", second.order_id, "--config", str(org_dir)]) == 1
    assert "is rejected, not held" in capsys.readouterr().err
    assert store.ledger.get(first.order_id).status == S.SUBMITTED
    assert set(outbox(org_dir)) == {first.idempotency_key}
    assert main(["approve", "no-such-order", "--config", str(org_dir)]) == 1


def test_a_run_hands_the_last_runs_models_to_the_forecast(org_dir, store, monkeypatch):
    from restock import planning
    from restock.forecast.select import model_key

    asked: list = []
    answered: list = []
    real = planning.forecast_panel

    def spying(*args, previous=None, **kwargs):
        asked.append(previous)
        answered.append(real(*args, previous=previous, **kwargs))
        return answered[-1]

    monkeypatch.setattr(planning, "forecast_panel", spying)
    first = run_org(load_org(write_org(org_dir)), store=store)
    second = run_org(load_org(write_org(org_dir, as_of=AS_OF + timedelta(days=7))), store=store)
    assert asked[0] == {}          # nothing catalogued yet
    last = store.models.for_run(first.run_id)
    assert asked[1] == {e.sku: model_key(e.model, e.params or {}) for e in last}
    assert len(asked[1]) == 30 and second.status == RunStatus.OK
    # the catalog says why each model was chosen, as the forecast did
    for run, result in ((first, answered[0]), (second, answered[1])):
        why = dict(zip(result.ids.astype(str), result.chosen_by, strict=True))
        assert {e.sku: e.chosen_by for e in store.models.for_run(run.run_id)} == why
    assert "previous" not in answered[0].chosen_by


def test_each_line_reports_the_quantiles_the_org_asks_for(org_dir, store, monkeypatch):
    from restock import planning

    made: list = []
    real = planning.forecast_panel
    monkeypatch.setattr(planning, "forecast_panel",
                        lambda *a, **k: made.append(real(*a, **k)) or made[-1])
    path = write_org(org_dir)
    path.write_text(path.read_text().replace(
        "forecast: {statsmodels_seconds: 0}", "forecast: {statsmodels_seconds: 0, "
        "quantiles: [0.95, 0.5]}"))
    summary = run_org(load_org(path), store=store)
    assert summary.status == RunStatus.OK, summary.errors
    result = made[0]
    row = {sku: i for i, sku in enumerate(result.ids.astype(str))}
    lines = [line for order in (*summary.orders, *summary.held) for line in order.lines]
    assert lines
    for line in lines:
        data = next(r for r in line.reasons if r.code == "forecast").data
        days = data["lead_time_days"] + data["review_period_days"]
        expected = result.demand_quantiles(days, (0.5, 0.95))[row[line.sku]]
        assert list(data["quantiles"]) == ["q0.5", "q0.95"]
        assert list(data["quantiles"].values()) == pytest.approx(expected, abs=0.006)
        assert data["quantiles"]["q0.5"] <= data["quantiles"]["q0.95"]


def test_a_history_split_over_two_locations_plans_as_its_sum(org_dir, tmp_path):
    def lines(folder: Path) -> dict[str, float]:
        with closing(open_store(f"sqlite:///{folder / 'state.sqlite'}")) as own:
            summary = run_org(load_org(write_org(folder, mode="dry_run")), store=own)
        assert summary.status == RunStatus.OK, summary.errors
        return {line.sku: line.quantity for order in summary.orders + summary.held
                for line in order.lines}

    whole = lines(org_dir)
    split_dir = tmp_path / "split"
    shutil.copytree(org_dir / "warehouse", split_dir / "warehouse")
    (split_dir / "orgs").mkdir()
    history = pd.read_csv(split_dir / "warehouse" / "history.csv.gz")
    first = history.assign(location="A", quantity=np.floor(history["quantity"] / 2))
    second = history.assign(location="B", quantity=history["quantity"] - first["quantity"])
    pd.concat([second, first]).sample(frac=1.0, random_state=3).to_csv(
        split_dir / "warehouse" / "history.csv.gz", index=False)
    assert lines(split_dir) == whole and whole


@pytest.mark.parametrize("summary_days", [400, None])
def test_summaries_older_than_summary_days_are_deleted_but_the_runs_stay_listed(
        org_dir, store, monkeypatch, summary_days):
    from restock import insight
    from restock.store.schema import runs

    monkeypatch.setattr(insight, "TREND_RUNS", 2)   # the next run reads this many back
    extra = f"summary_days: {'null' if summary_days is None else summary_days}\n"
    made = [run_org(load_org(write_org(org_dir, mode="dry_run", as_of=AS_OF + timedelta(days=d),
                                       extra=extra)), store=store).run_id for d in range(3)]
    with store.engine.begin() as conn:               # the first two finished 500 days ago
        conn.execute(runs.update().where(runs.c.run_id.in_(made[:2])).values(
            finished_at=datetime.now(UTC) - timedelta(days=500)))
    last = run_org(load_org(write_org(org_dir, mode="dry_run", as_of=AS_OF + timedelta(days=3),
                                      extra=extra)), store=store)
    assert last.previous_run_id == made[2]
    kept = [r.run_id for r in store.runs.list("acme") if store.runs.summary(r.run_id)]
    if summary_days is None:
        assert kept == [last.run_id, *made[::-1]]
    else:   # the two that finished 500 days ago go; the newest two stay
        assert kept == [last.run_id, made[2]]
    assert len(store.runs.list("acme")) == 4
