"""The fast path's shortcuts give what the plain computation gives."""

from __future__ import annotations

import numpy as np
import pytest

from restock.forecast import fast
from restock.forecast.select import Backtest, Windows, _errors, candidates


def _sporadic(n: int = 300, t: int = 200, seed: int = 5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    occurs = rng.random((n, t)) < rng.uniform(0.02, 0.6, n)[:, None]
    return occurs * rng.gamma(2.0, 3.0, (n, t)).round()


def test_banded_smoothing_matches_whole_rows_where_it_is_read() -> None:
    y = _sporadic()
    nz = fast.nonzero(y, np.zeros(len(y), dtype=np.int64))
    whole, banded = fast.ses_path(nz.sizes, 0.1), fast.ses_path(nz.sizes, 0.1, nz.counts)
    for row in range(len(y)):
        count = nz.counts[row]
        np.testing.assert_array_equal(banded[row, :count], whole[row, :count])


def test_bucket_alpha_for_all_sizes_at_once_matches_one_size_at_a_time() -> None:
    y = _sporadic(seed=8)
    t = y.shape[1]
    k = np.random.default_rng(1).integers(0, 12, len(y))
    got = fast._bucket_alpha(y, k, fast.ADIDA_ALPHA_GRID)
    for size in np.unique(k[k > 0]):
        rows = np.flatnonzero(k == size)
        count = t // size
        sums = y[rows, t - count * size:].reshape(len(rows), count, size).sum(axis=2)
        alpha = fast.grid_alpha(sums, fast.ADIDA_ALPHA_GRID)
        np.testing.assert_array_equal(np.asarray(fast.ADIDA_ALPHA_GRID)[got[rows]], alpha)
    assert (got[k == 0] == 0).all()


@pytest.mark.parametrize("sporadic", [False, True])
def test_closed_form_window_error_matches_the_paths(sporadic: bool) -> None:
    rng = np.random.default_rng(3)
    if sporadic:
        y = _sporadic(t=180)
    else:    # trends down to zero and below, so damped-trend paths get clipped at zero
        slope = rng.normal(0, 0.3, 300)[:, None]
        y = np.maximum(rng.normal(20, 4, (300, 180)) + slope * np.arange(180), 0).round()
    start = np.zeros(len(y), dtype=np.int64)
    plan = Backtest.plan(y.shape[1], 21)
    nz = fast.nonzero(y, start) if sporadic else None
    actual = np.stack([y[:, e:e + plan.horizon] for e in plan.ends], axis=1)
    valid = np.ones(actual.shape[:2], dtype=bool)
    valid[:20, 0] = False
    windows = Windows(actual, valid)
    pool = candidates(y, start, nz, plan, sporadic=sporadic, season=7)
    assert {c.name for c in pool} >= ({"Croston", "TSB"} if sporadic else {"Holt", "SES"})
    for cand in pool:
        paths = cand.paths(plan.horizon, ends=slice(0, len(plan.ends)))
        _, expected = _errors(paths, actual, valid)
        np.testing.assert_allclose(windows.mse(cand), expected, rtol=1e-9, atol=1e-9,
                                   err_msg=cand.name)
