"""A pooled cycle target counts an order that outlasts a review cycle as a per-item target does:
the position after a review spreads over the order's excess, so several cycles are exposed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import optimize
from scipy.stats import norm

from restock.policy import pooled_cycle_z, standard_normal_loss
from restock.simulate import Decision, Items, check_items, restock_policy

TOP = norm.ppf(0.9999)


def exposed_service(z, width):
    """1 - (L(z) - L(z + w)) / w per item, 1 - (1 - Phi(z)) where there is no excess."""
    z, width = np.broadcast_arrays(np.asarray(z, dtype=float), np.asarray(width, dtype=float))
    wide = width > 0
    short = norm.sf(z)
    short[wide] = (standard_normal_loss(z[wide]) - standard_normal_loss(z[wide] + width[wide])) \
        / width[wide]
    return 1.0 - short


def catalogue(n=400, seed=3):
    rng = np.random.default_rng(seed)
    sd, cost = rng.gamma(2.0, 3.0, n), rng.uniform(0.5, 80.0, n)
    cost[:3] = 0.0   # free protection
    width = np.where(rng.random(n) < 0.6, rng.exponential(2.0, n), 0.0)
    width[3:6] = [1e-9, 1e-4, 40.0]   # rounding-narrow, narrow, an order of many cycles
    return sd, cost, width


def one_exposure_rule(level, price):
    """The rule without excess, solved on its own: phi(z_i) = multiplier x price_i within the
    range, the multiplier set so that the average Phi(z_i) is the level."""
    def factors(log_multiplier):
        scaled = np.minimum(np.exp(log_multiplier) * price * np.sqrt(2 * np.pi), 1.0)
        with np.errstate(divide="ignore"):
            z = np.sqrt(-2 * np.log(scaled))
        return np.clip(np.where(price > 0, z, TOP), 0.0, TOP)

    root = optimize.brentq(lambda m: norm.cdf(factors(m)).mean() - level, -50, 50, xtol=1e-14)
    return factors(root)


@pytest.mark.parametrize("level", [0.8, 0.9, 0.95, 0.99])
def test_without_excess_the_rule_is_the_one_exposure_rule(level):
    sd, cost, _ = catalogue()
    z = pooled_cycle_z(level, sd, cost, excess=0.0)
    assert z == pytest.approx(one_exposure_rule(level, sd * cost), abs=1e-8)
    assert pooled_cycle_z(level, sd, cost) == pytest.approx(z, abs=1e-12)
    assert norm.cdf(z).mean() == pytest.approx(level, abs=1e-9)


@pytest.mark.parametrize("level", [0.8, 0.9, 0.95, 0.99])
def test_the_items_own_exposed_services_average_the_level(level):
    sd, cost, width = catalogue()
    z = pooled_cycle_z(level, sd, cost, excess=width)
    assert exposed_service(z, width).mean() == pytest.approx(level, abs=1e-6)
    assert (z >= 0).all() and (z <= TOP + 1e-12).all()
    assert z[:3] == pytest.approx([TOP] * 3)


def test_the_mix_is_the_cheapest_for_its_average():
    sd, cost, width = np.array([2.0, 5.0, 1.0]), np.array([3.0, 1.0, 10.0]), \
        np.array([0.0, 1.5, 4.0])
    level = 0.9
    z = pooled_cycle_z(level, sd, cost, excess=width)
    best = optimize.minimize(
        lambda x: (sd * cost * x).sum(), np.full(3, 1.5), method="SLSQP",
        bounds=[(0.0, TOP)] * 3, options={"ftol": 1e-14, "maxiter": 500},
        constraints=[{"type": "eq", "fun": lambda x: exposed_service(x, width).mean() - level}])
    assert best.success
    assert z == pytest.approx(best.x, abs=1e-5)
    assert (sd * cost * z).sum() == pytest.approx(best.fun, rel=1e-7)


def test_a_wider_excess_needs_a_lower_factor_for_the_same_price():
    sd, cost = np.full(4, 5.0), np.full(4, 2.0)
    z = pooled_cycle_z(0.95, sd, cost, excess=[0.0, 0.5, 2.0, 8.0])
    assert z[0] > z[1] > z[2] > z[3]


def test_the_order_count_and_the_excess_are_not_combined():
    with pytest.raises(ValueError, match="excess"):
        pooled_cycle_z(0.95, [1.0, 2.0], [1.0, 1.0], [1.0, 3.0], excess=[0.0, 1.0])


class _Forecasts:
    def __init__(self, mean, sd):
        self.mean, self.sd = np.asarray(mean, dtype=float), np.asarray(sd, dtype=float)

    def demand_over(self, t, periods):
        return self.mean, self.sd


def test_the_replay_prices_a_pooled_item_by_its_excess():
    frame = check_items(pd.DataFrame({"item_id": ["free", "moq", "pack"], "lead_time": 3,
                                      "unit_cost": [4.0, 4.0, 9.0], "moq": [0.0, 120.0, 0.0],
                                      "pack_size": [1.0, 1.0, 50.0]}))
    items = Items.aligned(frame, frame["item_id"].to_numpy())
    review, horizon = 2, 5.0                 # lead time 3 + review 2
    mean, sd = np.array([50.0, 50.0, 25.0]), np.array([8.0, 8.0, 6.0])
    state = Decision(t=20, history=np.ones((3, 20)), items=items, review=review,
                     forecasts=_Forecasts(mean, sd))
    _, target = restock_policy(0.9, pooled=True, calibrate=False, feedback=False)(state)
    cycle = mean / horizon * review          # 20, 20, 10 units a cycle
    order = np.array([20.0, 120.0, 50.0])    # exact fit, the MOQ, one pack
    width = (order - cycle) / sd
    z = (target - mean) / sd
    assert exposed_service(z, width).mean() == pytest.approx(0.9, abs=1e-6)
    # one exposed cycle per order (1, 6 and 5 cycles) reads the same stock quite differently
    assert abs((1 - norm.sf(z) / (order / cycle)).mean() - 0.9) > 0.01
    _, once = restock_policy(0.9, pooled=True, calibrate=False, feedback=False,
                             per_order=False)(state)
    assert norm.cdf((once - mean) / sd).mean() == pytest.approx(0.9, abs=1e-6)


def test_a_level_the_lowest_factors_already_give_leaves_every_item_there():
    # positions spread over ten sds: even z = 0 leaves few cycles short
    z = pooled_cycle_z(0.9, [3.0, 4.0], [1.0, 2.0], excess=[10.0, 12.0])
    assert z == pytest.approx([0.0, 0.0])
    assert exposed_service(z, [10.0, 12.0]).mean() > 0.9
