"""Model choice per series by rolling-origin backtest on the series' own recent history.

For a group of series the candidate models (families × small parameter grids, see
``candidates``) are computed as of several backtest origins and as of the end of the data, all
at once. Each origin's forecast is scored on the ``h_bt`` periods that follow it; the scores
are scaled by the series' in-sample naive error (MASE: mean absolute error / mean absolute
one-step difference; RMSSE: root of mean squared error / mean squared one-step difference), so
they compare across series and stay finite with zeros. Each series gets the candidate with the
lowest score among those allowed for it; its parameters were therefore chosen on out-of-sample
error too, which is what the series will face.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from restock.forecast import fast

ORIGINS = 3
MAX_ORIGINS = 6
SPARSE_MAX_ORIGINS = 24
MIN_TRAIN = 4
CRITERIA = ("auto", "rmsse", "mase", "both")

SES_REGULAR = (0.05, 0.1, 0.2, 0.3, 0.5)
SES_SPORADIC = (0.02, 0.05, 0.1, 0.2)
TSB_ALPHA_D = (0.1, 0.2)
TSB_ALPHA_P = (0.02, 0.05, 0.1, 0.2)
# Damping 0.9 only: at 0.98 a trend runs on almost undamped (over 28 days it adds 21 times the
# last step's slope, against 8.5 at 0.9). Over ten rolling 28-day windows of pasta, the series
# that chose Holt erred 0.28 MASE more than CrostonSBA; without 0.98 restock's mean MASE fell
# from 0.864 to 0.859, with carparts and MAN unchanged (bench: forecast_accuracy, rolling).
HOLT_PARAMS = ((0.1, 0.1, 0.9), (0.3, 0.1, 0.9))
# A trend is extrapolated at most half as far as the history it was learnt from: from ten weeks
# ending in a spike, a damped trend forecast a spare part at 4.8 times its mean over the next
# 20 weeks, and the replay stocked that order for two years (MAN).
TREND_HISTORY_PER_STEP = 2
# A series keeps the model it had last time unless another now scores more than this much better:
# a choice flipping between near-equal models moved MAN's order-up-to levels by a median 31% per
# review (8% when the model stayed), and the stock left after each swing cost more than the
# closer fit bought (MAN and pasta replays, docs/policy.md §5).
STICKY_MARGIN = 0.10
# On daily data a series leaves the steadiest level, SES(DAILY_DEFAULT_ALPHA), only for a model
# whose backtest advantage is at least GATE_STANDARD_ERRORS standard errors of its per-window
# differences. Choosing the best of a dozen near-equal candidates on the noise of a few windows
# cost more than it bought there: over ten rolling 28-day windows of pasta a fixed SES(0.05) beat
# the free choice by 0.015 MASE on the regular series, and with the gate on every daily series
# both daily sets improved over their windows (bench: forecast_accuracy, rolling;
# docs/forecasting.md §3). Weekly and monthly data keep the free choice: SES(0.05) there would
# take a year or more to follow a level shift that a few windows show.
DAILY_DEFAULT_ALPHA = 0.05
DAILY_DEFAULT = f"SES({DAILY_DEFAULT_ALPHA:g})"     # its name in what restock says
GATE_STANDARD_ERRORS = 2.0
# On daily data the forecast then leans on the long run: DAILY_LONG_RUN_SHARE of each period is
# the series' mean demand over its last LONG_RUN_PERIODS observed periods (two years, the
# default history; a whole number of years, so a yearly season averages out). Daily retail
# demand returns toward its usual level after a run of high or low weeks that SES(0.05) follows.
# Over pasta's ten rolling 28-day windows MASE / RMSSE fell by 0.004 ± 0.002 / 0.005 ± 0.001,
# and the M5 sample's twenty windows moved by -0.003 ± 0.007 / -0.001 ± 0.004. The weekly and
# monthly spare parts lost MASE with shares of 0.1 and 0.25: a part's level declines over its
# life (docs/forecasting.md §3).
DAILY_LONG_RUN_SHARE = 0.2
LONG_RUN_PERIODS = 730
# Why a series has its model, as the model catalog records it (docs/forecasting.md §3).
CHOSEN_BY = {
    "backtest": "the best backtest score",
    "steady": f"{DAILY_DEFAULT} kept on daily data: no other model was clearly better",
    "previous": "last run's model kept: within the margin of a better score",
    "class": "its demand class (new, too short or dead) sets it",
}
SEASON_LEVEL_CYCLES = (1, 2, 4, 8)
SEASON_INDEX_CYCLES = 26
SEASON_TEST_PERIODS = 366


@dataclass
class Candidate:
    """One model with fixed parameters: what it knows at each end, and how that becomes a path.

    ``states`` is (n, ends) for a flat forecast or (n, ends, k) with a ``basis``: the path over
    h periods is ``states @ basis(h)`` (k, h), so a backtest window's squared error has a closed
    form in the window's sums (see :class:`Windows`) and needs no (n, ends, h) array.
    """

    name: str
    params: dict
    states: np.ndarray
    basis: Callable[[int], np.ndarray] | None = None   # h → (k, h); None: flat
    allowed: np.ndarray | None = None  # (n,) bool; None: every series
    default: bool = False              # the group's steady choice, left only on clear evidence

    def coefficients(self, ends: slice = slice(None)) -> np.ndarray:
        """(n, ends, k) weights of the basis (flat: k = 1, the level, never negative)."""
        if self.basis is None:
            return np.maximum(self.states[:, ends, None], 0.0)
        return self.states[:, ends]

    def basis_of(self, horizon: int) -> np.ndarray:
        return np.ones((1, horizon)) if self.basis is None else self.basis(horizon)

    def paths(self, horizon: int, rows: np.ndarray | None = None,
              ends: slice = slice(None)) -> np.ndarray:
        """Forecast paths (n, ends, horizon) (of ``rows`` only when given), never negative."""
        coef = self.coefficients(ends)
        coef = coef if rows is None else coef[rows]
        return np.maximum(coef @ self.basis_of(horizon), 0.0)


@dataclass
class Backtest:
    """Where to cut: origins (ends) for the backtest, each scored on the next ``horizon``."""

    ends: list[int]
    horizon: int
    final: int                          # the end of the data

    @classmethod
    def plan(cls, t: int, horizon: int, origins: int | None = None,
             step: int | None = None) -> Backtest:
        """Origins stepping back by half the backtest horizon from the end of the data."""
        h_bt = max(1, min(horizon, t // 3))
        step = step or max(1, (h_bt + 1) // 2)
        if origins is None:     # long histories afford more origins: a steadier choice
            origins = int(np.clip((t - 2 * h_bt) // (4 * step), ORIGINS, MAX_ORIGINS))
        ends = [t - h_bt - k * step for k in range(origins)]
        return cls(ends=[e for e in ends if e >= 1], horizon=h_bt, final=t)

    def sparse(self) -> Backtest:
        """The plan for sporadic demand: windows a whole backtest horizon apart, so that they
        do not overlap, as many as the usual rule affords at that step (up to
        SPARSE_MAX_ORIGINS); this plan when fewer than ORIGINS fit.

        A window of sporadic demand holds few demands and overlapping windows share them, so
        telling candidates apart takes more, separate windows than regular demand does. On the
        usual two-year daily panel the count stays the same; long histories get more.
        """
        h = self.horizon
        origins = min((self.final - 2 * h) // (4 * h), SPARSE_MAX_ORIGINS)
        if origins < ORIGINS:
            return self
        return Backtest.plan(self.final, h, origins=origins, step=h)

    @property
    def all_ends(self) -> list[int]:
        return [*self.ends, self.final]


@dataclass
class Choice:
    """The chosen model per series, its forecast and its backtest record."""

    point: np.ndarray            # (n, h) >= 0
    model: np.ndarray            # (n,) name
    params: list[dict]
    mase: np.ndarray             # (n,) NaN when not measured
    rmsse: np.ndarray
    mse: np.ndarray              # (n,) one period's error variance: the backtest's mean squared
                                 # error, at least the demand's own (``demand_noise``); NaN if none
    spread: np.ndarray           # (n,) variance of a window total / (periods × mse), >= 1
    origins: np.ndarray          # (n,) backtest origins that counted
    backtest: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0)))  # chosen paths
    actual: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0)))
    valid: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=bool))
    chosen_by: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))  # (n,)
    # a CHOSEN_BY key: "steady" where the gate kept the default, "previous" where
    # ``_keep_previous`` kept last run's model over a better score


def scales(y: np.ndarray, start: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """In-sample naive one-step error per series: (mean |diff|, mean diff²); 1 when zero.

    The backfilled prefix adds zero differences, so whole-row sums are the observed ones.
    """
    diff = np.diff(y, axis=1)
    count = np.maximum(y.shape[1] - start - 1, 1)
    mse = np.einsum("ij,ij->i", diff, diff) / count
    mae = np.abs(diff, out=diff).sum(axis=1) / count
    level = (y.sum(axis=1) - np.minimum(start, y.shape[1]) * y[:, 0]) / \
        np.maximum(y.shape[1] - start, 1)
    fallback = np.where(level > 0, level, 1.0)
    return np.where(mae > 0, mae, fallback), np.where(mse > 0, mse, fallback ** 2)


def candidates(y: np.ndarray, start: np.ndarray, nz: fast.NonZero | None, plan: Backtest, *,
               sporadic: bool, season: int | None, moment: np.ndarray | None = None,
               horizon: int | None = None, daily: bool = False) -> list[Candidate]:
    """The families that fit a group of series (regular or sporadic demand), as of every end.

    ``moment``: each series' E[size²] / E[size] if already known (see classify). ``horizon``:
    the periods to forecast; a damped trend is offered only to series with
    ``TREND_HISTORY_PER_STEP`` observed periods per period ahead (default: the backtest's).
    ``daily``: SES(DAILY_DEFAULT_ALPHA) is the default (see ``choose``)."""
    ends = plan.all_ends
    alphas = SES_SPORADIC if sporadic else SES_REGULAR
    levels = fast.ses(y, ends, alphas)
    out = [Candidate("SES", {"alpha": a}, levels[:, :, i],
                     default=daily and a == DAILY_DEFAULT_ALPHA)
           for i, a in enumerate(alphas)]
    if sporadic:
        out += _sporadic(y, start, nz, ends)
    else:
        steps = plan.horizon if horizon is None else horizon
        out += _holt(y, ends, plan.final - start >= TREND_HISTORY_PER_STEP * steps)
    if season and season > 1:
        out += _seasonal(y, start, plan, season, naive=not sporadic,
                         moment=_size_moment(y, start) if moment is None else moment)
    return out


def _sporadic(y: np.ndarray, start: np.ndarray, nz: fast.NonZero,
              ends: Sequence[int]) -> list[Candidate]:
    croston = fast.croston(nz, ends, 0.1)
    out = [Candidate("Croston", {"alpha": 0.1}, croston),
           Candidate("SBA", {"alpha": 0.1}, 0.95 * croston)]     # SBA: Croston debiased
    tsb = fast.tsb(y, nz, ends, TSB_ALPHA_D, TSB_ALPHA_P)
    out += [Candidate("TSB", {"alpha_d": ad, "alpha_p": ap}, tsb[:, :, i, k])
            for i, ad in enumerate(TSB_ALPHA_D) for k, ap in enumerate(TSB_ALPHA_P)]
    adida, imapa = fast.adida_imapa(y, start, nz, ends)
    out += [Candidate("ADIDA", {}, adida), Candidate("IMAPA", {}, imapa)]
    return out


def _holt(y: np.ndarray, ends: Sequence[int], allowed: np.ndarray) -> list[Candidate]:
    out = []
    for alpha, beta, phi in HOLT_PARAMS:
        state = (y @ fast.holt_weights(y.shape[1], ends, alpha, beta, phi))
        out.append(Candidate("Holt", {"alpha": alpha, "beta": beta, "phi": phi},
                             state.reshape(len(y), len(ends), 2), _damped_basis(phi),
                             None if allowed.all() else allowed))
    return out


def _damped_basis(phi: float) -> Callable[[int], np.ndarray]:
    """Level plus the damped trend's sum: rows (1, phi + ... + phi^j)."""
    def basis(horizon: int) -> np.ndarray:
        return np.stack([np.ones(horizon), np.cumsum(phi ** np.arange(1, horizon + 1))])
    return basis


def _seasonal(y: np.ndarray, start: np.ndarray, plan: Backtest, season: int,
              naive: bool = True, *, moment: np.ndarray) -> list[Candidate]:
    """Season-aware candidates; seasonal naive (one noisy season repeated) only when ``naive``:
    on sporadic demand it repeats whichever days happened to sell."""
    ends = plan.all_ends
    first = min(plan.ends) if plan.ends else plan.final
    if first < 2 * season:
        return []
    allowed = (first - start >= 2 * season) & seasonal(y[:, :first], start, season)
    rows = np.flatnonzero(allowed)
    if not len(rows):
        return []
    # Worked out for the series where the season shows only (often few of a sporadic group);
    # the others keep zero states, never scored.
    y, start, moment = y[rows], start[rows], moment[rows]
    cycles = min(SEASON_INDEX_CYCLES, first // season)
    profile = np.stack([fast.seasonal_profile(y, end, season, cycles) for end in ends], axis=1)
    raw = fast.seasonal_index(profile)
    index = 1.0 + (1.0 - _index_shrink(moment, profile, raw, cycles,
                                       np.ones(len(rows), dtype=bool))) * (raw - 1.0)
    shape = (len(allowed), len(ends), season)
    out = [Candidate("SeasonalNaive", {"season": season},
                     _rows_of(np.stack([y[:, end - season:end] for end in ends], axis=1), rows,
                              shape), _position_basis(season), allowed)] if naive else []
    for level_cycles in (c for c in SEASON_LEVEL_CYCLES if c <= cycles):
        level = np.stack([y[:, end - level_cycles * season:end].mean(axis=1) for end in ends],
                         axis=1)
        out.append(Candidate("SeasonalIndex", {"season": season, "level_cycles": level_cycles,
                                               "index_cycles": cycles},
                             _rows_of(level[:, :, None] * index, rows, shape),
                             _position_basis(season), allowed))
    return out


def _rows_of(values: np.ndarray, rows: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``values`` of ``rows`` placed in a zero array of ``shape`` (all rows)."""
    if len(rows) == shape[0]:
        return values
    out = np.zeros(shape)
    out[rows] = values
    return out


def _index_shrink(moment: np.ndarray, profile: np.ndarray, index: np.ndarray,
                  cycles: int, allowed: np.ndarray) -> np.ndarray:
    """How far to pull each season index toward 1: the share of its spread that sampling noise
    explains (positive-part James-Stein), (n, ends, 1); 0 where seasons are not offered.

    A position's mean over ``cycles`` seasons of demand with level m varies by
    (m E[size²]/E[size] − m²) / cycles, so its index by (E[size²]/E[size] / m − 1) / cycles. On
    sporadic demand that is most of the index: the weekday that happened to sell.
    """
    share = np.zeros(profile.shape[:2])
    rows = np.flatnonzero(allowed)
    level = profile[rows].mean(axis=2)
    spread = ((index[rows] - 1.0) ** 2).mean(axis=2)
    with np.errstate(all="ignore"):
        noise = (moment[rows][:, None] / level - 1.0) / cycles
        share[rows] = np.clip(np.nan_to_num(noise / spread, nan=1.0, posinf=1.0), 0.0, 1.0)
    return share[:, :, None]


def seasonal(y: np.ndarray, start: np.ndarray, season: int) -> np.ndarray:
    """Series whose autocorrelation at the season lag is significant (above 2 / sqrt(n)).

    A season found by chance in a short or sporadic history makes the backtest pick seasonal
    naive for noise, so seasonal models are offered only where the season shows.
    """
    recent = max(y.shape[1] - SEASON_TEST_PERIODS, 0)     # the last few years are enough
    y, start = y[:, recent:], np.clip(start - recent, 0, y.shape[1] - recent)
    count = np.maximum(y.shape[1] - start, 1)
    # the backfilled prefix holds the first value: take it out of the sum, zero it in z
    mean = (y.sum(axis=1) - start * y[:, 0]) / count
    z = y - mean[:, None]
    for row in np.flatnonzero(start):       # usually few rows start inside the window
        z[row, :start[row]] = 0.0
    with np.errstate(all="ignore"):
        r = np.einsum("ij,ij->i", z[:, season:], z[:, :-season]) / np.einsum("ij,ij->i", z, z)
    return np.nan_to_num(r) > 2.0 / np.sqrt(count)


def _position_basis(season: int) -> Callable[[int], np.ndarray]:
    """Step j repeats season position j % season: a one-hot row per position."""
    def basis(horizon: int) -> np.ndarray:
        return (np.arange(horizon)[None, :] % season == np.arange(season)[:, None]) * 1.0
    return basis


def model_key(name: str, params: dict) -> str:
    """A model with its parameters as one comparable string (what ``previous`` holds)."""
    return f"{name} {json.dumps(params, sort_keys=True, default=str)}"


def choose(y: np.ndarray, start: np.ndarray, plan: Backtest, pool: list[Candidate],
           horizon: int, *, criterion: str = "rmsse", combine: int = 1,
           keep_backtest: bool = False, moment: np.ndarray | None = None,
           previous: np.ndarray | None = None) -> Choice:
    """Score every candidate on the backtest origins; each series gets the mean of its
    ``combine`` best (1: the best alone), scored again as a whole. Where the pool has a
    ``default`` candidate, a series keeps it unless the best beats it by GATE_STANDARD_ERRORS
    standard errors of their per-origin differences. With ``previous`` (each series' last
    :func:`model_key`, or None) a series keeps that model while its score is within
    ``STICKY_MARGIN`` of the best."""
    n, e_bt = len(y), len(plan.ends)
    actual = np.stack([y[:, e:e + plan.horizon] for e in plan.ends], axis=1) if e_bt else \
        np.zeros((n, 0, plan.horizon))
    valid = np.stack([e - start >= MIN_TRAIN for e in plan.ends], axis=1) if e_bt else \
        np.zeros((n, 0), dtype=bool)
    origins = valid.sum(axis=1)
    scale1, scale2 = scales(y, start)
    mae, mse = np.full((n, len(pool)), np.nan), np.full((n, len(pool)), np.nan)
    windows = Windows(actual, valid)
    tested = slice(0, e_bt)
    for c, cand in enumerate(pool):
        if criterion == "rmsse":
            mse[:, c] = windows.mse(cand)
        elif cand.basis is None:      # absolute error has no closed form: the paths themselves
            mae[:, c], mse[:, c] = _errors(cand.coefficients(tested), actual, valid)
        else:                         # (a flat level broadcasts; a shaped path only where allowed)
            rows = slice(None) if cand.allowed is None else np.flatnonzero(cand.allowed)
            mae[rows, c], mse[rows, c] = _errors(
                cand.paths(plan.horizon, rows=rows, ends=tested), actual[rows], valid[rows])
        if cand.allowed is not None:
            mae[~cand.allowed, c] = mse[~cand.allowed, c] = np.nan
    score = np.nan_to_num(scaled_score(mae / scale1[:, None], mse / scale2[:, None],
                                       criterion), nan=np.inf)
    order = np.argsort(score, axis=1, kind="stable")[:, :max(combine, 1)]
    chosen_by = np.full(n, "backtest", dtype=object)
    default = next((c for c, cand in enumerate(pool) if cand.default), None)
    if combine <= 1 and default is not None:
        chosen_by[_gate(order, score, pool, default, lambda cand, rows: _scores_per_origin(
            cand, rows, plan.horizon, actual, (scale1, scale2), criterion), valid)] = "steady"
    if previous is not None and combine <= 1:
        chosen_by[_keep_previous(order, score, pool, previous)] = "previous"
    used = np.isfinite(np.take_along_axis(score, order, axis=1))
    used[:, 0] = True
    weight = used / used.sum(axis=1, keepdims=True)
    point, backtest = np.zeros((n, horizon)), np.zeros((n, e_bt, plan.horizon))
    for c, cand in enumerate(pool):
        share = (weight * (order == c)).sum(axis=1)
        mine = np.flatnonzero(share > 0)
        if len(mine):       # the paths of the series that chose this candidate only
            point[mine] += share[mine, None] * \
                cand.paths(horizon, rows=mine, ends=slice(-1, None))[:, 0]
            backtest[mine] += share[mine, None, None] * \
                cand.paths(plan.horizon, rows=mine, ends=tested)
    chosen_mae, chosen_mse = _errors(backtest, actual, valid)
    spread = _spread(backtest, actual, valid, chosen_mse)
    if order.shape[1] == 1:
        names = list(np.array([c.name for c in pool], dtype=object)[order[:, 0]])
        # one parameter dict per candidate, shared by the series that chose it (read-only)
        params = list(_object_array([c.params for c in pool])[order[:, 0]])
    else:
        names = [_name(pool, order[i], used[i]) for i in range(n)]
        params = [_params(pool, order[i], used[i]) for i in range(n)]
    empty = (np.zeros((0, 0, 0)), np.zeros((0, 0, 0)), np.zeros((0, 0), dtype=bool))
    kept = (backtest, actual, valid) if keep_backtest else empty
    return Choice(point=point, model=np.array(names, dtype=object), params=params,
                  mase=chosen_mae / scale1, rmsse=np.sqrt(chosen_mse / scale2),
                  mse=np.maximum(chosen_mse, demand_noise(y, start, point.mean(axis=1),
                                                          moment)),
                  spread=spread, origins=origins, backtest=kept[0], actual=kept[1],
                  valid=kept[2], chosen_by=chosen_by)


def holds_on(held, best):
    """Whether a model scoring ``held`` keeps its place against the best score ``best``: while
    within ``STICKY_MARGIN`` of it (arrays or numbers)."""
    return held <= best * (1 + STICKY_MARGIN)


def _gate(order: np.ndarray, score: np.ndarray, pool: list[Candidate], default: int,
          per_origin: Callable[[Candidate, np.ndarray], np.ndarray],
          valid: np.ndarray) -> np.ndarray:
    """Puts the pool's ``default`` candidate (its index) first in ``order`` (in place) wherever
    the best one does not beat it by ``GATE_STANDARD_ERRORS`` standard errors of their
    per-origin score differences; returns where it did, (n,) bool. ``per_origin(candidate,
    rows)`` gives those rows' (rows, origins) scores."""
    best = order[:, 0]
    held = np.zeros(len(order), dtype=bool)
    rows = np.flatnonzero((best != default) & np.isfinite(score[:, default]))
    if not len(rows):
        return held
    diff = per_origin(pool[default], rows)
    for c in np.unique(best[rows]):        # the leaders' windows, each on its own rows
        mine = best[rows] == c
        diff[mine] -= per_origin(pool[c], rows[mine])
    diff[~valid[rows]] = np.nan
    clear = clearly_better(diff)
    order[rows[~clear], 0] = default
    held[rows[~clear]] = True
    return held


def clearly_better(diff: np.ndarray) -> np.ndarray:
    """Per row of ``diff`` (rows, origins): the default's score minus a challenger's at each
    origin, NaN where an origin does not count. Whether the challenger wins by more than
    ``GATE_STANDARD_ERRORS`` standard errors of the mean difference, over two origins or more."""
    count = np.isfinite(diff).sum(axis=1)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)     # rows with no or one origin
        gain = np.nanmean(diff, axis=1)
        error = np.nanstd(diff, axis=1, ddof=1) / np.sqrt(count)
        return (count >= 2) & np.isfinite(error) & (gain > GATE_STANDARD_ERRORS * error)


def _scores_per_origin(cand: Candidate, rows: np.ndarray, horizon: int, actual: np.ndarray,
                       scale: tuple[np.ndarray, np.ndarray], criterion: str) -> np.ndarray:
    """(rows, origins) score of each backtest window of ``cand`` on ``rows``."""
    absolute, squared = _window_sums(
        cand.paths(horizon, rows=rows, ends=slice(0, actual.shape[1])), actual[rows])
    periods = actual.shape[2]
    return scaled_score(absolute / periods / scale[0][rows, None],
                        squared / periods / scale[1][rows, None], criterion)


def _keep_previous(order: np.ndarray, score: np.ndarray, pool: list[Candidate],
                   previous: np.ndarray) -> np.ndarray:
    """Puts each series' previous model first in ``order`` where it scores within the margin;
    returns the rows where that changed the choice."""
    index = {model_key(c.name, c.params): i for i, c in enumerate(pool)}
    last = np.array([index.get(key, -1) for key in previous])
    rows = np.flatnonzero(last >= 0)
    held = score[rows, last[rows]]
    close = rows[np.isfinite(held) & holds_on(held, score[rows].min(axis=1))]
    changed = close[order[close, 0] != last[close]]
    order[changed, 0] = last[changed]
    return changed


def demand_noise(y: np.ndarray, start: np.ndarray, rate: np.ndarray,
                 moment: np.ndarray | None = None) -> np.ndarray:
    """Variance of one period's demand at ``rate`` if it came as the series' demands did.

    A period sells with chance p = rate / mean size and then one of the series' sizes, so its
    variance is rate × E[size²] / E[size] − rate². No forecast can err less than that; a
    backtest over a quiet stretch can, and its spread would make sporadic quantiles too narrow.
    """
    return demand_noise_at(rate, _size_moment(y, start) if moment is None else moment)


def demand_noise_at(rate: np.ndarray, moment: np.ndarray) -> np.ndarray:
    """:func:`demand_noise` from the series' E[size²] / E[size] (``Classes.size_moment``)."""
    return np.maximum(rate * moment - rate ** 2, 0.0)


def _size_moment(y: np.ndarray, start: np.ndarray) -> np.ndarray:
    """E[size²] / E[size] over the periods with demand (0 with none), per series."""
    prefix, first = np.minimum(start, y.shape[1]), y[:, 0]
    sizes = y.sum(axis=1) - prefix * first
    squares = np.einsum("ij,ij->i", y, y) - prefix * first ** 2
    with np.errstate(all="ignore"):
        return np.where(sizes > 0, squares / sizes, 0.0)


def _spread(paths: np.ndarray, actual: np.ndarray, valid: np.ndarray,
            mse: np.ndarray) -> np.ndarray:
    """How much faster than the number of periods the error of a total grows.

    Errors of successive periods are rarely independent (a level shift errs the same way every
    day), so the squared error of each backtest window's total is compared with periods × mse;
    the ratio (between 1 and the window length) widens the spread of totals over lead time.
    """
    total = (paths.sum(axis=2) - actual.sum(axis=2)) ** 2
    count = valid.sum(axis=1)
    with np.errstate(all="ignore"):
        ratio = (total * valid).sum(axis=1) / count / (actual.shape[2] * mse)
    return np.clip(np.nan_to_num(ratio, nan=1.0, posinf=1.0), 1.0, max(actual.shape[2], 1))


class Windows:
    """The backtest windows' actuals, and what a closed-form squared error needs of them.

    For a path ``c @ B`` (coefficients c, basis B of k rows) the window's squared error is
    ``c·(B Bᵀ)c − 2 c·(B a) + a·a``: one (n, ends, k) product per basis instead of an
    (n, ends, h) array per candidate. It holds while the path is not clipped at zero, which a
    lower bound from the basis' extremes checks; rows where it might be are computed in full.
    """

    def __init__(self, actual: np.ndarray, valid: np.ndarray) -> None:
        self.actual, self.valid = actual, valid
        self.horizon = actual.shape[2]
        self._projections: dict[bytes, np.ndarray] = {}

    @cached_property
    def squares(self) -> np.ndarray:
        """a·a per series and window (only the closed form needs it)."""
        return np.einsum("nej,nej->ne", self.actual, self.actual)

    def mse(self, cand: Candidate) -> np.ndarray:
        """(n,) mean squared error per period over the valid origins (NaN when none)."""
        tested = slice(0, self.actual.shape[1])
        basis, coef = cand.basis_of(self.horizon), cand.coefficients(tested)
        key = basis.tobytes()
        if key not in self._projections:
            self._projections[key] = self.actual @ basis.T
        cross = coef @ (basis @ basis.T) - 2.0 * self._projections[key]
        per_origin = (np.einsum("nek,nek->ne", cross, coef) + self.squares) / self.horizon
        unsure = self._maybe_clipped(coef, basis)
        if len(unsure):
            err = cand.paths(self.horizon, rows=unsure, ends=tested) - self.actual[unsure]
            per_origin[unsure] = np.einsum("nej,nej->ne", err, err) / self.horizon
        return self._mean(per_origin)

    @staticmethod
    def _maybe_clipped(coef: np.ndarray, basis: np.ndarray) -> np.ndarray:
        """Rows whose path may dip below zero somewhere (a lower bound from the basis rows'
        extremes); with no negative coefficient on a non-negative basis, none."""
        if basis.min() >= 0 and not (coef < 0).any():
            return np.zeros(0, dtype=np.int64)
        lowest = np.where(coef >= 0, coef * basis.min(axis=1), coef * basis.max(axis=1))
        return np.flatnonzero((lowest.sum(axis=2) < 0).any(axis=1))

    def _mean(self, per_origin: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            return (per_origin * self.valid).sum(axis=1) / self.valid.sum(axis=1)


def _window_sums(paths: np.ndarray, actual: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sum of absolute and of squared errors over each backtest window: (n, origins) each."""
    err = paths - actual
    squared = np.einsum("ijk,ijk->ij", err, err)
    return np.abs(err, out=err).sum(axis=2), squared


def _errors(paths: np.ndarray, actual: np.ndarray, valid: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray]:
    """Mean absolute and mean squared error over the valid origins (NaN when none)."""
    absolute, squared = _window_sums(paths, actual)
    origins = valid.sum(axis=1) * actual.shape[2]
    with np.errstate(all="ignore"):
        return ((absolute * valid).sum(axis=1) / origins,
                (squared * valid).sum(axis=1) / origins)


def _name(pool: list[Candidate], order: np.ndarray, used: np.ndarray) -> str:
    names = list(dict.fromkeys(pool[c].name for c in order[used]))
    return "+".join(names)


def _object_array(items: list) -> np.ndarray:
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


def _params(pool: list[Candidate], order: np.ndarray, used: np.ndarray) -> dict:
    members = [pool[c] for c in order[used]]
    if len(members) == 1:
        return dict(members[0].params)
    return {"members": [{"model": m.name, **m.params} for m in members]}


def scaled_score(mase: np.ndarray, msse: np.ndarray, criterion: str) -> np.ndarray:
    """A backtest score from errors scaled by the series' in-sample naive error: its MASE, its
    mean squared scaled error (ordered as RMSSE is), or both ("auto", "both")."""
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {', '.join(CRITERIA)} (got {criterion!r})")
    if criterion == "mase":
        return mase
    if criterion == "rmsse":
        return msse
    return mase + np.sqrt(msse)
