"""The level one protection interval is asked when an order outlasts a review cycle."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from restock.policy.loss import standard_normal_loss
from restock.simulate import Decision, Items, check_items, exposed_level, simulate

LEAD, REVIEW, LUMP, CHANCE, MOQ = 8, 2, 5.0, 0.4, 20.0   # demand: LUMP x Poisson(CHANCE) a period


def _setting(moq: list[float], pack: list[float]) -> Items:
    frame = check_items(pd.DataFrame({"item_id": [f"I{k}" for k in range(len(moq))],
                                      "lead_time": LEAD, "unit_cost": 1.0, "moq": moq,
                                      "pack_size": pack}))
    return Items.aligned(frame, frame["item_id"].to_numpy())


def test_without_an_excess_over_the_cycle_the_level_is_the_target():
    setting = _setting([0.0, 10.0], [1.0, 5.0])
    assert exposed_level(0.9, np.array([10.0, 10.0]), np.array([7.0, 7.0]), setting) == \
        pytest.approx([0.9, 0.9])


def test_the_short_share_over_the_spread_positions_is_the_target():
    setting = _setting([40.0], [1.0])   # an order of 40 lasts four cycles of 10
    level = exposed_level(0.9, np.array([10.0]), np.array([10.0]), setting)
    z, width = norm.ppf(level[0]), 30.0 / 10.0
    short = (standard_normal_loss(z) - standard_normal_loss(z + width)) / width
    assert short == pytest.approx(0.1, abs=1e-9)


def test_an_excess_far_below_the_spread_leaves_the_target_and_far_above_it_a_coin_toss():
    setting = _setting([40.0, 40.0], [1.0, 1.0])
    lumpy, steady = exposed_level(0.9, np.array([10.0, 10.0]), np.array([3000.0, 1.0]), setting)
    assert 0.899 < lumpy < 0.9
    assert steady == pytest.approx(0.5)


def test_lumpy_demand_asks_more_than_one_exposed_cycle_per_order():
    # Four cycles per order: one exposure would allow 40% short in it (level 0.6); demand
    # over the interval spread far wider than the order keeps several cycles exposed.
    setting = _setting([40.0], [1.0])
    lumpy = exposed_level(0.9, np.array([10.0]), np.array([100.0]), setting)
    once = exposed_level(0.9, np.array([10.0]), np.array([100.0]), setting, units=True)
    assert once == pytest.approx(0.6) and lumpy > 0.85


def _lumpy_history(items: int, periods: int) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    demand = LUMP * rng.poisson(CHANCE, size=(items, periods))
    dates = pd.date_range("2020-01-01", periods=periods, freq="D")
    return pd.DataFrame({"item_id": np.repeat([f"I{k}" for k in range(items)], periods),
                         "date": np.tile(dates, items), "quantity": demand.ravel()})


def _known_demand(level_of):
    """Order up to the true mean + z sd of demand over lead time + review."""
    horizon = LEAD + REVIEW
    mean, sd = LUMP * CHANCE * horizon, LUMP * np.sqrt(CHANCE * horizon)

    def decide(state: Decision):
        n = len(state.items.ids)
        cycle = np.full(n, LUMP * CHANCE * REVIEW)
        target = mean + norm.ppf(level_of(cycle, np.full(n, sd), state.items)) * sd
        return target - 1e-9, target
    return decide


def test_a_replay_of_lumpy_demand_under_an_moq_delivers_the_target():
    # An order of 20 lasts five cycles of 4 units, and demand over lead time + review (sd 10)
    # can take a shelf from well above the order-up-to level to empty: counting one exposed
    # cycle per order (1 - 5 x 0.1 = 0.5) falls far short, the spread positions do not.
    history = _lumpy_history(300, 400)
    settings = pd.DataFrame({"item_id": history["item_id"].unique(), "lead_time": LEAD,
                             "unit_cost": 1.0, "moq": MOQ})

    def achieved(level_of) -> float:
        run = simulate(history, settings, _known_demand(level_of), periods=300, freq="D",
                       review=REVIEW)
        return run.totals["reachable_cycle_service_level"]

    assert achieved(lambda cycle, sd, items: exposed_level(0.9, cycle, sd, items)) == \
        pytest.approx(0.9, abs=0.02)
    assert achieved(lambda cycle, sd, items: np.full(len(cycle), 0.5)) < 0.85


def test_the_replay_asks_what_the_live_planner_asks():
    from restock.policy import exposed_level as planner_level

    setting = _setting([0.0, 30.0, 25.0], [1.0, 1.0, 12.0])   # MOQ 25 in packs of 12: 36
    cycle, sd = np.array([10.0, 10.0, 10.0]), np.array([6.0, 6.0, 6.0])
    for units in (False, True):
        replay = exposed_level(0.93, cycle, sd, setting, units=units)
        assert np.array_equal(replay, planner_level(0.93, cycle, sd, [1.0, 1.0, 12.0],
                                                    [0.0, 30.0, 25.0], units=units))
        assert replay[0] == pytest.approx(0.93) and replay[2] < replay[1] < 0.93
