"""The fast families reproduce statsforecast 2.1.1's point forecasts on real series.

Oracles: shared/data/oracles/statsforecast_<set>.csv (20 series per set, 8 for the M5 sample),
computed on statsforecast_<set>_train.csv. Each series is forecast from its own rows, in order.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from restock.forecast import fast

SETS = ("carparts", "man", "pasta", "m5_foods1_small")
MODELS = ("SES", "CrostonClassic", "CrostonSBA", "TSB", "ADIDA")


def _train_panel(folder: Path, name: str) -> tuple[list[str], np.ndarray]:
    train = pd.read_csv(folder / f"statsforecast_{name}_train.csv", dtype={"unique_id": str})
    groups = [g["y"].to_numpy(float) for _, g in train.groupby("unique_id", sort=False)]
    ids = list(dict.fromkeys(train["unique_id"]))
    width = max(len(g) for g in groups)
    values = np.full((len(groups), width), np.nan)
    for i, series in enumerate(groups):
        values[i, width - len(series):] = series       # shorter series start later
    return ids, values


def _ours(values: np.ndarray) -> dict[str, np.ndarray]:
    y, start = fast.backfill(values)
    nz = fast.nonzero(y, start)
    end = [y.shape[1]]
    return {
        "SES": fast.ses(y, end, [0.1])[:, 0, 0],
        "CrostonClassic": fast.croston(nz, end, 0.1)[:, 0],
        "CrostonSBA": fast.croston(nz, end, 0.1, debias=0.95)[:, 0],
        "TSB": fast.tsb(y, nz, end, [0.1], [0.1])[:, 0, 0, 0],
        "ADIDA": fast.adida(y, start, nz, end, exact=True)[:, 0],
    }


@pytest.mark.parametrize("name", SETS)
def test_fast_families_match_statsforecast(shared_data: Path, name: str) -> None:
    folder = shared_data / "oracles"
    ids, values = _train_panel(folder, name)
    oracle = pd.read_csv(folder / f"statsforecast_{name}.csv", dtype={"unique_id": str})
    first = oracle[oracle["step"] == 1].set_index("unique_id").loc[ids]
    ours = _ours(values)
    for model in MODELS:
        expected = first[model].to_numpy(float)
        # The oracle file prints 12 significant digits; ADIDA's alpha comes from a golden-section
        # search on a flat objective, whose last digits follow float rounding: relative 1e-8.
        tolerance = 1e-8 * np.maximum(1.0, np.abs(expected)) if model == "ADIDA" else 1e-8
        assert np.all(np.abs(ours[model] - expected) <= tolerance), (name, model)


def test_a_later_start_is_the_same_as_the_trimmed_series() -> None:
    rng = np.random.default_rng(3)
    series = (rng.random(40) < 0.4) * rng.integers(1, 9, 40).astype(float)
    series[0] = 0.0
    padded = np.concatenate([np.full(15, np.nan), series])[None, :]
    trimmed = _ours(series[None, :])
    shifted = _ours(padded)
    for model in MODELS:
        np.testing.assert_allclose(shifted[model], trimmed[model], rtol=1e-12, atol=1e-12)
