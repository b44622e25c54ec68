"""Safety stock beyond the oracle cases: slow movers, lead-time variability, bad arguments."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from restock.policy import (
    discrete_level,
    discrete_loss,
    inverse_standard_normal_loss,
    normal_loss,
    poisson_loss,
    protection_demand,
    safety_stock_fill_rate,
    standard_normal_loss,
)


def test_lead_time_variability_adds_mean_squared_times_lead_time_variance():
    mean, sd = protection_demand(10.0, 3.0, 4.0, 1.0, lead_time_sd=2.0)
    assert mean == 50.0
    assert sd == pytest.approx(np.sqrt(9 * 5 + 100 * 4))


def test_normal_loss_matches_numeric_integral():
    x = np.linspace(-3, 3, 7)
    grid = np.linspace(-12, 12, 200_001)
    numeric = [np.trapezoid(np.maximum(grid - v, 0) * stats.norm.pdf(grid), grid) for v in x]
    assert standard_normal_loss(x) == pytest.approx(numeric, abs=1e-8)
    assert normal_loss(5.0, 5.0, 0.0) == 0.0 and normal_loss(3.0, 5.0, 0.0) == 2.0


def test_inverse_loss_round_trips():
    z = np.array([-2.5, -0.3, 0.0, 1.7, 3.9])
    assert inverse_standard_normal_loss(standard_normal_loss(z)) == pytest.approx(z, abs=1e-9)


def test_fill_rate_safety_stock_meets_the_target_exactly():
    ss = safety_stock_fill_rate(20.0, 0.97, 100.0)
    assert 1 - normal_loss(ss, 0.0, 20.0) / 100.0 == pytest.approx(0.97, abs=1e-12)


def test_poisson_and_negative_binomial_losses_agree_with_direct_sums():
    k = np.arange(0, 400)
    for level in (0, 1, 4, 9):
        direct = (np.maximum(k - level, 0) * stats.poisson.pmf(k, 3.2)).sum()
        assert poisson_loss(level, 3.2) == pytest.approx(direct, abs=1e-12)
        assert discrete_loss(level, 3.2, 3.2) == pytest.approx(direct, abs=1e-9)
        n, p = 3.2**2 / (9.0 - 3.2), 3.2 / 9.0
        direct_nb = (np.maximum(k - level, 0) * stats.nbinom.pmf(k, n, p)).sum()
        assert discrete_loss(level, 3.2, 9.0) == pytest.approx(direct_nb, abs=1e-9)


def test_slow_mover_levels_are_the_least_integer_meeting_the_target():
    level = discrete_level([2.0, 2.0], [2.0, 6.0], cycle_service=0.95)
    assert level[0] == stats.poisson.ppf(0.95, 2.0)
    assert level[1] > level[0]   # more variable demand needs more stock
    fill = discrete_level([2.0], [2.0], fill_rate=0.9, cycle_demand=[1.0])[0]
    assert poisson_loss(fill, 2.0) <= 0.1 < poisson_loss(fill - 1, 2.0)


@pytest.mark.parametrize("level", [0.0, 1.0, 1.2, -0.1])
def test_service_levels_outside_zero_one_are_refused(level):
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        safety_stock_fill_rate(1.0, level, 1.0)


def test_negative_lead_time_is_refused():
    with pytest.raises(ValueError, match="lead_time"):
        protection_demand(1.0, 1.0, -1.0)
