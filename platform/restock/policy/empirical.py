"""Order-up-to levels from the forecast errors actually seen, not from an assumed normal shape.

A safety stock ``z sd`` assumes errors over lead time + review are normal with a known sd. Real
errors over a horizon are skewed and heavy-tailed (promotions, a level that moved), so a normal
fitted to their root mean square over-stocks the common case to pay for rare giants, and one
period's error scaled by the square root of the horizon under-states the spread. Here the level
is read from the distribution of past standardised errors ``(actual - forecast) / sd`` over the
same horizon: each item's own errors, blended with the errors of all items (the prior) until the
item has seen enough of its own tail.
"""

from __future__ import annotations

import numpy as np

SETTLED_SALES = 3  # periods with a sale before a window opened for its error to count
TAIL_PRIOR = 2.0   # tail observations after which an item's own errors weigh as much as the pool's
_STEPS = 50        # bisection steps over the error range (to ~1e-14 of it)


def error_levels(errors, mean, sd, level, *, fill_rate=False, cycle_demand=0.0,
                 tail_prior=TAIL_PRIOR) -> np.ndarray:
    """Order-up-to levels ``mean + k sd`` meeting a cycle service level or a fill rate.

    ``errors`` is (windows × items) of standardised forecast errors over the protection interval
    (NaN where a window is unknown); ``mean`` and ``sd`` are this forecast's. For a cycle service
    level ``k`` is the ``level`` quantile of the errors; for a fill rate the least ``k`` whose
    expected shortage per cycle ``sd E[(e - k)+]`` is at most ``(1 - level) cycle_demand``.
    An item's own errors get the weight ``n (1 - level) / (n (1 - level) + tail_prior)``, the
    pooled errors of all items the rest (``tail_prior=inf``: the pool alone); with no errors
    at all the level is the mean.
    """
    errors = np.asarray(errors, dtype=float)
    mean, sd = np.asarray(mean, dtype=float), np.asarray(sd, dtype=float)
    pool = np.sort(errors[np.isfinite(errors)])
    if pool.size == 0:
        return mean.copy()
    seen = np.isfinite(errors)
    tail = seen.sum(axis=0) * (1.0 - level)
    own = tail / (tail + tail_prior) if np.isfinite(tail_prior) else np.zeros(tail.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        allowed = np.where(sd > 0, (1.0 - level) * np.asarray(cycle_demand, float) / sd, np.inf)
    low = np.full(mean.shape, pool[0] - 1.0)
    high = np.full(mean.shape, pool[-1] + 1.0)
    for _ in range(_STEPS):
        k = 0.5 * (low + high)
        if fill_rate:
            short = own * _own_loss(errors, seen, k) + (1 - own) * _pool_loss(pool, k)
            enough = short <= allowed
        else:
            covered = own * _own_cdf(errors, seen, k) + (1 - own) * _pool_cdf(pool, k)
            enough = covered >= level
        low, high = np.where(enough, low, k), np.where(enough, k, high)
    return mean + high * np.where(sd > 0, sd, 0.0)


def pooled_error_levels(errors, mean, scale, level) -> np.ndarray:
    """Order-up-to levels ``mean + k scale`` for a cycle service level, ``k`` the ``level``
    quantile of the errors of all items pooled: the least pooled error with at least a share
    ``level`` of them at or below it (``level`` broadcasts over items).

    The pool alone, no item's own tail: restock's rule (the replay's default for a per-item
    cycle target, and the live planner's). On the replays an item's own tail, a year of
    windows at most, stocked promotion-heavy or lumpy items for their rare giants and cost more
    than it bought (:func:`error_levels` with a finite ``tail_prior`` weighs it in). With no
    errors at all the level is the mean.
    """
    return ErrorPool(errors).levels(mean, scale, level)


class ErrorPool:
    """Past standardised errors pooled over the items, sorted once (NaN and infinities left
    out), for :func:`pooled_error_levels` at many levels: a 100,000-SKU plan reads a pool of
    five million errors two or three times."""

    def __init__(self, errors) -> None:
        errors = np.asarray(errors, dtype=float).ravel()
        self.sorted = np.sort(errors[np.isfinite(errors)])
        # Sum of the errors from each rank up: the pool's loss E[(e - k)+] in one lookup.
        self._from_rank = np.concatenate([np.cumsum(self.sorted[::-1])[::-1], [0.0]])

    def __len__(self) -> int:
        return self.sorted.size

    def levels(self, mean, scale, level) -> np.ndarray:
        """``mean + k scale``, ``k`` the least pooled error with a share >= ``level`` at or
        below it; the mean itself when the pool is empty."""
        mean, scale = np.asarray(mean, dtype=float), np.asarray(scale, dtype=float)
        pool = self.sorted
        if pool.size == 0:
            return mean.copy()
        # The small allowance keeps a level like 0.9 of 10 errors (9.000000000000002 in
        # floating point) at the 9th.
        rank = np.ceil(np.asarray(level, dtype=float) * pool.size - 1e-9).astype(np.int64)
        k = pool[np.clip(rank - 1, 0, pool.size - 1)]
        return mean + k * np.where(scale > 0, scale, 0.0)

    def exceeds(self, k) -> np.ndarray:
        """The share of the pooled errors above ``k``: the chance demand exceeds ``mean + k
        scale``."""
        return 1.0 - np.searchsorted(self.sorted, k, side="right") / self.sorted.size

    def loss(self, k) -> np.ndarray:
        """``E[(e - k)+]`` over the pooled errors: times ``scale``, the units short expected
        with ``mean + k scale`` in stock."""
        k = np.asarray(k, dtype=float)
        first = np.searchsorted(self.sorted, k, side="right")
        return (self._from_rank[first] - k * (self.sorted.size - first)) / self.sorted.size


def _own_cdf(errors, seen, k):
    with np.errstate(invalid="ignore"):
        below = ((errors <= k) & seen).sum(axis=0)
    return below / np.maximum(seen.sum(axis=0), 1)


def _own_loss(errors, seen, k):
    excess = np.where(seen, np.maximum(np.nan_to_num(errors) - k, 0.0), 0.0)
    return excess.sum(axis=0) / np.maximum(seen.sum(axis=0), 1)


def _pool_cdf(pool, k):
    return np.searchsorted(pool, k, side="right") / pool.size


def _pool_loss(pool, k):
    # E[(e - k)+] from the sorted pool: the sum above k minus k times the count above k.
    above_sum = np.concatenate([np.cumsum(pool[::-1])[::-1], [0.0]])
    first = np.searchsorted(pool, k, side="right")
    return (above_sum[first] - k * (pool.size - first)) / pool.size
