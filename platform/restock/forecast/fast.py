"""Fast forecasting families, each computed for every series of a panel at once.

Every function takes ``y``: an (n, t) float array of demand where each row has been *backfilled*
(periods before the series' first observation hold that first value, see :func:`backfill`) and
``start``: the index of each row's first real observation. Forecasts are asked "as of" one or
more ``ends``: an end ``e`` means "using periods ``[0, e)`` only", which is how the rolling-origin
backtest and the final forecast share one computation.

Why backfill: simple exponential smoothing started at the first observation is then the same
linear map of the row for every series, whatever its start, so the levels of all series at all
ends and smoothing constants are one matrix product (``y @ weights``). Holt's damped trend is a
linear map too. Croston, SBA and TSB smooth the non-zero sizes and the gaps between them, which
are compacted into a left-aligned (n, k) array and smoothed along it a block at a time.

Where statsforecast has the same model, the definitions follow it (see docs/forecasting.md):
SES starts at the first observation; Croston's first interval is the leading zeros + 1; SBA is
0.95 × Croston; TSB is SES(alpha_p) of the occurrence × SES(alpha_d) of the sizes; ADIDA buckets
by the rounded mean interval, drops the oldest incomplete bucket and picks alpha in [0.1, 0.3]
by golden-section search on the one-step squared error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

GOLDEN = (np.sqrt(5.0) + 1.0) / 2.0
ADIDA_ALPHA_GRID = (0.1, 0.15, 0.2, 0.25, 0.3)


def backfill(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n, t) values with NaN before each start → (backfilled float64 array, start index).

    NaN after a series' start (a gap) counts as zero demand; a row with no observation at all
    gets start = t and zeros.
    """
    y = np.array(values, dtype=np.float64)
    n, t = y.shape
    missing = np.isnan(y)
    observed = ~missing
    start = np.where(observed.any(axis=1), observed.argmax(axis=1), t)
    y[missing] = 0.0
    first = y[np.arange(n), np.minimum(start, max(t - 1, 0))] if t else np.zeros(n)
    for row in np.flatnonzero(start > 0):    # usually few rows start late
        y[row, :start[row]] = first[row]
    return y, start


def _ses_weights(t: int, ends: Sequence[int], alphas: Sequence[float]) -> np.ndarray:
    """(t, len(ends) * len(alphas)) weights: ``y @ w`` is the SES level after ``y[:, :end]``."""
    j = np.arange(t)
    cols = np.zeros((t, len(ends) * len(alphas)))
    for i, end in enumerate(ends):
        for k, alpha in enumerate(alphas):
            col = cols[:, i * len(alphas) + k]
            age = end - 1 - j[:end]
            col[:end] = alpha * (1.0 - alpha) ** age
            col[0] = (1.0 - alpha) ** (end - 1)
    return cols


def ses(y: np.ndarray, ends: Sequence[int], alphas: Sequence[float]) -> np.ndarray:
    """SES level (= flat forecast) per series, end and alpha: (n, len(ends), len(alphas))."""
    levels = y @ ses_weights(y.shape[1], ends, alphas)
    return levels.reshape(len(y), len(ends), len(alphas))


def ses_path(x: np.ndarray, alpha: float, lengths: np.ndarray | None = None) -> np.ndarray:
    """Level after each element of each row (started at the row's first element).

    With ``lengths`` (per row), only each row's first ``lengths`` elements are smoothed (the
    rest of the row is left zero): rows are taken in bands of similar length, each band only
    as wide as its longest row, so a few long rows do not make every row pay their width.
    """
    if x.shape[1] == 0:
        return x.copy()
    if lengths is None:
        return _smooth(np.asarray(x, dtype=np.float64), alpha)
    out = np.zeros(x.shape)
    for rows, width in _bands(lengths):
        out[rows, :width] = _smooth(x[rows, :width], alpha)
    return out


_BLOCK = 16


def _smooth(x: np.ndarray, alpha: float) -> np.ndarray:
    """SES levels along each row, ``_BLOCK`` periods per matrix product.

    Inside a block the level after element j is sum_i alpha (1 - alpha)^(j - i) x_i plus
    (1 - alpha)^(j + 1) times the level before the block: a small triangular product, then
    the carry. (A product per block beats a sequential filter here, and needs no signal
    library.) The level before the first element is that element, as statsforecast starts.
    """
    return _smooth_each(x, (alpha,))[0]


def _smooth_each(x: np.ndarray, alphas: Sequence[float]) -> np.ndarray:
    """:func:`_smooth` for every alpha at once, (alphas, rows, periods): the alphas' block
    weights stacked, so each block is one batched product rather than one per alpha."""
    weights = np.stack([_block_weights(float(a))[0] for a in alphas])     # (A, B, B)
    carry = np.stack([_block_weights(float(a))[1] for a in alphas])       # (A, B)
    out = np.empty((len(alphas), *x.shape))
    level = np.broadcast_to(x[:, 0], (len(alphas), len(x)))
    for lo in range(0, x.shape[1], _BLOCK):
        width = min(_BLOCK, x.shape[1] - lo)
        block = out[:, :, lo:lo + width]
        np.matmul(x[:, lo:lo + width], weights[:, :width, :width], out=block)
        block += level[:, :, None] * carry[:, None, :width]
        level = block[:, :, -1]
    return out


@lru_cache(maxsize=64)
def _block_weights(alpha: float) -> tuple[np.ndarray, np.ndarray]:
    step = np.arange(_BLOCK)
    age = step[None, :] - step[:, None]
    weights = np.where(age >= 0, alpha * (1.0 - alpha) ** np.maximum(age, 0), 0.0)
    carry = (1.0 - alpha) ** (step + 1)
    weights.flags.writeable = carry.flags.writeable = False
    return weights, carry


def _bands(lengths: np.ndarray, rows_per_band: int = 256) -> list[tuple[np.ndarray, int]]:
    """Rows grouped by length (shortest first), with each group's widest length."""
    order = np.argsort(lengths, kind="stable")
    out = []
    for lo in range(0, len(order), rows_per_band):
        rows = order[lo:lo + rows_per_band]
        width = int(lengths[rows[-1]])
        if width > 0:
            out.append((rows, width))
    return out


@dataclass
class NonZero:
    """The non-zero demands of every row, left-aligned: sizes, intervals and positions."""

    sizes: np.ndarray      # (n, k) size of the i-th non-zero demand
    intervals: np.ndarray  # (n, k) periods since the previous one (the first: since start, + 1)
    positions: np.ndarray  # (n, k) period index of the i-th non-zero demand
    counts: np.ndarray     # (n,) number of non-zero demands
    _counts: dict = field(default_factory=dict, repr=False)   # count_before, by end

    def rows(self, index: np.ndarray) -> NonZero:
        """The same for a subset of the rows (trimmed to their longest)."""
        counts = self.counts[index]
        k = int(counts.max()) if len(counts) else 0
        return NonZero(sizes=self.sizes[index, :k], intervals=self.intervals[index, :k],
                       positions=self.positions[index, :k], counts=counts)

    def count_before(self, end: int) -> np.ndarray:
        """How many non-zero demands each row has in periods [0, end)."""
        if end not in self._counts:
            self._counts[end] = (self.positions < end).sum(axis=1) - self.counts_padding
        return self._counts[end]

    @property
    def counts_padding(self) -> np.ndarray:
        return self.positions.shape[1] - self.counts

    def at(self, values: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """``values[row, count - 1]`` (the state after the last demand counted), NaN when none."""
        if values.shape[1] == 0:
            return np.full(len(counts), np.nan)
        picked = values[np.arange(len(counts)), np.maximum(counts - 1, 0)]
        return np.where(counts > 0, picked, np.nan)


def nonzero(y: np.ndarray, start: np.ndarray) -> NonZero:
    """Compact the positive demands at or after each row's start into left-aligned arrays."""
    n, t = y.shape
    mask = (y > 0) & (np.arange(t)[None, :] >= start[:, None])
    flat = np.flatnonzero(mask)
    rows, cols = flat // max(t, 1), flat % max(t, 1)
    counts = np.bincount(rows, minlength=n)
    k = int(counts.max()) if n else 0
    rank = np.arange(len(flat)) - np.repeat(np.cumsum(counts) - counts, counts)
    sizes = np.zeros((n, k))
    positions = np.full((n, k), -1, dtype=np.int64)
    sizes[rows, rank] = y[rows, cols]
    positions[rows, rank] = cols
    previous = np.empty_like(cols)
    previous[1:] = cols[:-1]
    first = rank == 0
    previous[first] = start[rows[first]] - 1
    intervals = np.ones((n, k))
    intervals[rows, rank] = cols - previous
    return NonZero(sizes=sizes, intervals=intervals, positions=positions, counts=counts)


def croston(nz: NonZero, ends: Sequence[int], alpha: float = 0.1,
            debias: float = 1.0) -> np.ndarray:
    """Croston's forecast (SES of sizes / SES of intervals) × ``debias``: (n, len(ends)).

    ``debias=0.95`` is SBA. A series with no demand yet forecasts 0.
    """
    size_path = ses_path(nz.sizes, alpha, nz.counts)
    interval_path = ses_path(nz.intervals, alpha, nz.counts)
    out = np.zeros((len(nz.counts), len(ends)))
    for i, end in enumerate(ends):
        counts = nz.count_before(end)
        with np.errstate(all="ignore"):
            out[:, i] = debias * nz.at(size_path, counts) / nz.at(interval_path, counts)
    return np.nan_to_num(out, nan=0.0)


def tsb(y: np.ndarray, nz: NonZero, ends: Sequence[int], alphas_d: Sequence[float],
        alphas_p: Sequence[float]) -> np.ndarray:
    """TSB: SES of occurrence (alpha_p) × SES of sizes (alpha_d): (n, ends, alphas_d, alphas_p)."""
    occurrence = ses((y > 0).astype(np.float64), ends, alphas_p)     # (n, E, P)
    out = np.zeros((len(y), len(ends), len(alphas_d), len(alphas_p)))
    for k, alpha_d in enumerate(alphas_d):
        path = ses_path(nz.sizes, alpha_d, nz.counts)
        for i, end in enumerate(ends):
            size = np.nan_to_num(nz.at(path, nz.count_before(end)), nan=0.0)
            out[:, i, k, :] = size[:, None] * occurrence[:, i, :]
    return out


def ses_sse(x: np.ndarray, alpha: np.ndarray | float) -> np.ndarray:
    """Sum of squared one-step errors of SES started at each row's first element."""
    if x.shape[1] < 2:
        return np.zeros(len(x))
    if np.ndim(alpha) == 0:
        path = ses_path(x, float(alpha))
        return ((x[:, 1:] - path[:, :-1]) ** 2).sum(axis=1)
    alpha = np.asarray(alpha)
    level, total = x[:, 0].copy(), np.zeros(len(x))
    for j in range(1, x.shape[1]):
        level = alpha * x[:, j - 1] + (1.0 - alpha) * level
        total += (x[:, j] - level) ** 2
    return total


def golden_alpha(x: np.ndarray, lower: float = 0.1, upper: float = 0.3) -> np.ndarray:
    """Per row, the alpha in [lower, upper] minimising SES's squared one-step error.

    Golden-section search to a bracket of 1e-12, stopping a row at an exact tie, as statsforecast
    does (so ADIDA/IMAPA reproduce its numbers).
    """
    n = len(x)
    a, b = np.full(n, lower), np.full(n, upper)
    c, d = b - (b - a) / GOLDEN, a + (b - a) / GOLDEN
    fc, fd = ses_sse(x, c), ses_sse(x, d)
    active = np.ones(n, dtype=bool)
    while True:
        active &= (np.abs(b - a) >= 1e-12) & (fc != fd)
        if not active.any():
            return (a + b) / 2.0
        left = active & (fc < fd)
        right = active & (fd < fc)
        b, d, fd = np.where(left, d, b), np.where(left, c, d), np.where(left, fc, fd)
        a, c, fc = np.where(right, c, a), np.where(right, d, c), np.where(right, fd, fc)
        probe = np.where(left, b - (b - a) / GOLDEN, a + (b - a) / GOLDEN)
        idx = np.flatnonzero(active)
        value = ses_sse(x[idx], probe[idx])
        fc[idx[left[idx]]] = value[left[idx]]
        fd[idx[right[idx]]] = value[right[idx]]
        c = np.where(left, probe, c)
        d = np.where(right, probe, d)


def grid_alpha(x: np.ndarray, grid: Sequence[float] = ADIDA_ALPHA_GRID) -> np.ndarray:
    """Per row, the alpha of ``grid`` with the least squared one-step error (the fast choice)."""
    return np.asarray(grid)[ses_sse_grid(x, grid).argmin(axis=1)]


def ses_sse_grid(x: np.ndarray, alphas: Sequence[float]) -> np.ndarray:
    """:func:`ses_sse` for every alpha of ``alphas`` at once: (rows, alphas)."""
    x = np.asarray(x, dtype=np.float64)
    if x.shape[1] < 2:
        return np.zeros((len(x), len(alphas)))
    path = _smooth_each(x, alphas)
    return ((x[None, :, 1:] - path[:, :, :-1]) ** 2).sum(axis=2).T


def _bucket_sums(csum: np.ndarray, start: np.ndarray, end: int, k: int) -> np.ndarray:
    """Sums of k-period buckets ending at ``end``, oldest first; buckets reaching before a row's
    start (the incomplete oldest bucket included) hold the row's oldest complete bucket."""
    count = np.maximum((end - start) // k, 0)
    b = max(int(count.max()), 1) if len(count) else 1
    edges = end - k * np.arange(b, -1, -1)                     # b + 1 edges, oldest first
    sums = csum[:, np.maximum(edges[1:], 0)] - csum[:, np.maximum(edges[:-1], 0)]
    oldest = b - np.maximum(count, 1)
    valid = np.arange(b)[None, :] >= oldest[:, None]
    fill = sums[np.arange(len(sums)), oldest]
    return np.where(valid, sums, fill[:, None])


def _mean_interval(nz: NonZero, start: np.ndarray, end: int) -> tuple[np.ndarray, np.ndarray]:
    counts = nz.count_before(end)
    last = nz.at(nz.positions.astype(np.float64), counts)
    with np.errstate(all="ignore"):
        return (last - start + 1) / counts, counts


def adida(y: np.ndarray, start: np.ndarray, nz: NonZero, ends: Sequence[int], *,
          exact: bool = False, imapa: bool = False) -> np.ndarray:
    """ADIDA (or IMAPA: the mean over aggregation levels 1..k) per series and end: (n, ends).

    Bucket size k = the mean interval rounded half to even. ``exact`` picks each bucket series'
    alpha by golden-section search (statsforecast's numbers); otherwise from a 5-point grid.
    """
    real = np.where(np.arange(y.shape[1])[None, :] >= start[:, None], y, 0.0)
    csum = np.zeros((len(y), y.shape[1] + 1))
    np.cumsum(real, axis=1, out=csum[:, 1:])
    out = np.zeros((len(y), len(ends)))
    for i, end in enumerate(ends):
        mean_interval, counts = _mean_interval(nz, start, end)
        k_max = np.where(counts > 0, np.round(np.nan_to_num(mean_interval, nan=1.0)), 0)
        k_max = np.maximum(k_max, 1).astype(np.int64) * (counts > 0)
        for k in np.unique(k_max[k_max > 0]):
            rows = np.flatnonzero(k_max == k)
            levels = range(1, k + 1) if imapa else (k,)
            parts = [_aggregate_forecast(csum[rows], start[rows], end, level, exact)
                     for level in levels]
            out[rows, i] = np.mean(parts, axis=0)
    return out


def _aggregate_forecast(csum: np.ndarray, start: np.ndarray, end: int, k: int,
                        exact: bool) -> np.ndarray:
    sums = _bucket_sums(csum, start, end, k)
    alpha = golden_alpha(sums) if exact else grid_alpha(sums)
    level = sums[:, 0].copy()
    for j in range(1, sums.shape[1]):
        level = alpha * sums[:, j] + (1.0 - alpha) * level
    return level / k


def _aggregate_weights(t: int, ends: Sequence[int], level: int,
                      alphas: Sequence[float]) -> np.ndarray:
    """(t, len(ends) * len(alphas)) weights: ``y @ w`` is SES over ``level``-period bucket sums
    ending at each end (oldest incomplete bucket dropped), divided by ``level``."""
    out = np.zeros((t, len(ends) * len(alphas)))
    for i, end in enumerate(ends):
        buckets = end // level
        if buckets < 1:
            continue
        first = end - buckets * level
        age = buckets - 1 - (np.arange(first, end) - first) // level
        for k, alpha in enumerate(alphas):
            weight = alpha * (1.0 - alpha) ** age
            weight[age == buckets - 1] = (1.0 - alpha) ** (buckets - 1)
            out[first:end, i * len(alphas) + k] = weight / level
    return out


def adida_imapa(y: np.ndarray, start: np.ndarray, nz: NonZero, ends: Sequence[int],
                grid: Sequence[float] = ADIDA_ALPHA_GRID) -> tuple[np.ndarray, np.ndarray]:
    """ADIDA and IMAPA as of every end, fast: (n, ends) each.

    The bucket size k comes from the mean interval over the whole history and each series'
    alpha from ``grid`` by squared one-step error on its final buckets (IMAPA's levels share
    it); the smoothing is then linear, one matrix product per k. Periods before a series' start
    hold its first value (the backfill), where statsforecast's ADIDA (``adida(exact=True)``)
    starts the buckets at the first observation.
    """
    t = y.shape[1]
    interval, counts = _mean_interval(nz, start, t)
    k_all = np.where(counts > 0, np.round(np.nan_to_num(interval, nan=1.0)), 1)
    k_all = np.clip(k_all, 1, max(min(ends), 1)).astype(np.int64)
    adida_out, imapa_out = np.zeros((len(y), len(ends))), np.zeros((len(y), len(ends)))
    pick = _bucket_alpha(y, np.where(counts > 0, k_all, 0), grid)
    # One product per bucket size and alpha, on that alpha's columns only: the grid's other
    # alphas would be computed and thrown away (a fifth of the work for a 5-point grid).
    key = np.where(counts > 0, k_all * len(grid) + pick, -1)
    for combined in np.unique(key[key >= 0]):
        k, a = divmod(int(combined), len(grid))
        rows = np.flatnonzero(key == combined)
        mine = y[rows]
        columns = slice(a, None, len(grid))      # (built for the whole grid: one cache entry)
        adida_out[rows] = mine @ aggregate_weights(t, ends, k, grid)[:, columns]
        imapa_out[rows] = mine @ imapa_weights(t, ends, k, grid)[:, columns]
    return adida_out, imapa_out


def _imapa_weights(t: int, ends: Sequence[int], k: int, alphas: Sequence[float]) -> np.ndarray:
    """IMAPA's weights: the mean of :func:`aggregate_weights` over levels 1..k."""
    total = np.zeros((t, len(ends) * len(alphas)))
    for level in range(1, k + 1):
        total += aggregate_weights(t, ends, level, alphas)
    return total / k


def _bucket_alpha(y: np.ndarray, k: np.ndarray, grid: Sequence[float]) -> np.ndarray:
    """Per row, the index in ``grid`` of the alpha with the least squared one-step error of SES
    on the row's k-period bucket sums (the last t // k buckets; rows with k = 0: 0).

    All rows at once: each row's sums are right-aligned and left-padded with its first sum,
    which leaves SES's level and errors as they were (the padding is predicted exactly), then
    smoothed in bands of similar length, so many small bucket sizes cost a few filter calls.
    """
    t = y.shape[1]
    active = np.flatnonzero(k > 0)
    pick = np.zeros(len(y), dtype=np.int64)
    if not len(active):
        return pick
    lengths = t // k[active]
    width = int(lengths.max())
    sums = np.empty((len(active), width))
    for size in np.unique(k[active]):
        at = np.flatnonzero(k[active] == size)
        count = t // size
        own = y[active[at], t - count * size:].reshape(len(at), count, size).sum(axis=2)
        sums[at, width - count:] = own
        sums[at, :width - count] = own[:, :1]
    errors = np.zeros((len(active), len(grid)))
    for rows, band in _bands(lengths):
        errors[rows] = ses_sse_grid(sums[rows, width - band:], grid)
    # errors are sums of squares of the sums: near-equal is judged against the sums' own size
    pick[active] = first_least(errors, scale=np.einsum("ij,ij->i", sums, sums))
    return pick


def first_least(errors: np.ndarray, scale: np.ndarray | float = 1.0,
                tolerance: float = 1e-9) -> np.ndarray:
    """Per row, the first column within ``tolerance`` × ``scale`` (per row, or one number) of
    the row's least value.

    Equal errors computed in bands of other rows (or by matrix products of another shape) can
    differ in their last bits, and a plain argmin then picks by that noise: the same series
    chose another alpha when the other series read with it changed (MAN, read by two
    processes: 7 of 3,451 series forecast differently)."""
    least = errors.min(axis=1, keepdims=True)
    slack = tolerance * np.maximum(np.abs(least), np.reshape(scale, (-1, 1)))
    return (errors <= least + slack).argmax(axis=1)


def seasonal_naive(y: np.ndarray, ends: Sequence[int], season: int, horizon: int) -> np.ndarray:
    """The last season repeated: (n, ends, horizon)."""
    steps = np.arange(horizon) % season
    return np.stack([y[:, end - season + steps] for end in ends], axis=1)


def seasonal_profile(y: np.ndarray, end: int, season: int, cycles: int) -> np.ndarray:
    """Mean of each season position over the last ``cycles`` full seasons before ``end``: (n, season).

    Position p is the period ``end - cycles * season + p`` (mod season), so step j after ``end``
    has position ``(j - 1) % season``.
    """
    # One small matrix product: a strided mean over the cycles axis is several times slower.
    return y[:, end - cycles * season:end] @ _position_sums(season, cycles) / cycles


@lru_cache(maxsize=64)
def _position_sums(season: int, cycles: int) -> np.ndarray:
    """(cycles * season, season): 1 where a period falls on a season position."""
    weights = np.tile(np.eye(season), (cycles, 1))
    weights.flags.writeable = False
    return weights


def seasonal_index(profile: np.ndarray, shrink: float = 0.0) -> np.ndarray:
    """Multiplicative season index from a (n, ends, horizon ≥ season) profile (mean 1).

    ``shrink`` in [0, 1) pulls the index toward 1 (no season) when the profile is noisy.
    """
    mean = profile.mean(axis=2, keepdims=True)
    with np.errstate(all="ignore"):
        index = np.where(mean > 0, profile / mean, 1.0)
    return (1.0 - shrink) * index + shrink


def _holt_weights(t: int, ends: Sequence[int], alpha: float, beta: float,
                 phi: float) -> np.ndarray:
    """(t, 2 * len(ends)) weights: ``y @ w`` gives (level, trend) of damped Holt after each end.

    Started at level = first value, trend = 0; the map is linear in the row, so it is computed
    once by running the recursion on the identity.
    """
    level, trend = np.zeros(t), np.zeros(t)
    level[0] = 1.0
    out = np.zeros((t, 2 * len(ends)))
    wanted = {end: i for i, end in enumerate(ends)}
    for j in range(1, max(ends)):
        unit = np.zeros(t)
        unit[j] = 1.0
        forecast = level + phi * trend
        error = unit - forecast
        level = forecast + alpha * error
        trend = phi * trend + alpha * beta * error
        if j + 1 in wanted:
            out[:, 2 * wanted[j + 1]], out[:, 2 * wanted[j + 1] + 1] = level, trend
    if 1 in wanted:
        out[0, 2 * wanted[1]] = 1.0
    return out


def _cached(build):
    """The weight builders depend only on their (hashable) arguments: build each matrix once
    per process, not once per chunk."""
    @lru_cache(maxsize=512)
    def cached(*args):
        out = build(*args)
        out.flags.writeable = False
        return out

    def call(t, ends, *rest):
        return cached(int(t), tuple(int(e) for e in ends),
                      *(tuple(r) if isinstance(r, (list, tuple)) else r for r in rest))
    call.__doc__ = build.__doc__
    return call


ses_weights = _cached(_ses_weights)
holt_weights = _cached(_holt_weights)
aggregate_weights = _cached(_aggregate_weights)
imapa_weights = _cached(_imapa_weights)
