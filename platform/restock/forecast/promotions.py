"""Promotion calendars: demand forecast around the periods an item is known to be on promotion.

A promotion is planned ahead, so its periods are known for the history and for the horizon. The
history is forecast with its promotion periods scaled back to the item's usual level (a spike
then lifts neither the level nor the spread after it), and the periods ahead on promotion are
scaled up again by the item's effect learnt from its own past, shrunk towards all items' effect
while it has seen few promotions. The backtest (:class:`restock.simulate.ForecastCache`) and the
live cycle (:mod:`restock.planning`) both go through :class:`PromotionEffect`.

Two kinds of effect: ``lift`` multiplies (promotion mean / usual mean) and ``extra`` adds units
per period (promotion mean - usual mean): an item that barely sells off promotion has a huge,
unstable lift on a near-zero level, but a steady extra.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from restock.errors import ConfigError
from restock.forecast.panel import PanelForecast, to_panel

LIFT_PRIOR = 10.0   # promotion periods after which an item's own lift weighs as much as the pool's
EFFECTS = ("lift", "extra")


def calendar_flags(calendar: pd.DataFrame, ids, dates: pd.DatetimeIndex, freq: str, *,
                   id_col: str = "item_id") -> np.ndarray:
    """Checked calendar rows (``id_col``, date, promotion 0/1) as an items x periods bool array
    on ``ids`` and the period starts ``dates``: a period is on promotion when any of its days
    is; items, days or periods not listed are not."""
    tidy = pd.DataFrame({"item_id": calendar[id_col].astype(str).to_numpy(),
                         "date": pd.to_datetime(calendar["date"]).to_numpy(),
                         "quantity": calendar["promotion"].astype(float).to_numpy()})
    grid = to_panel(tidy, freq=freq, start=dates[0], end=dates[-1])
    flags = pd.DataFrame(np.nan_to_num(grid.values) > 0, index=grid.ids, columns=grid.dates)
    return flags.reindex(index=ids, columns=dates, fill_value=False).to_numpy()


def on_the_calendar(flags: np.ndarray) -> np.ndarray:
    """Per item: whether the calendar puts it on promotion at least once (``flags`` over the
    history and the periods ahead)."""
    return np.asarray(flags, dtype=bool).any(axis=1)


def promotion_lift(values: np.ndarray, promoted: np.ndarray) -> np.ndarray:
    """Per item: mean demand in promotion periods / mean demand in the others, shrunk towards
    the lift of all items together while an item has seen few promotions (at least 1)."""
    values = np.nan_to_num(values)
    on, off = promoted.sum(axis=1), (~promoted).sum(axis=1)
    on_sum = np.where(promoted, values, 0).sum(axis=1)
    off_sum = np.where(promoted, 0, values).sum(axis=1)
    with np.errstate(all="ignore"):
        pooled = (on_sum.sum() / max(on.sum(), 1)) / (off_sum.sum() / max(off.sum(), 1))
        pooled = pooled if np.isfinite(pooled) and pooled > 0 else 1.0
        own = np.where((on > 0) & (off_sum > 0), (on_sum / np.maximum(on, 1))
                       / (off_sum / np.maximum(off, 1)), pooled)
    weight = on / (on + LIFT_PRIOR)
    return np.maximum(weight * own + (1 - weight) * pooled, 1.0)


def promotion_extra(values: np.ndarray, promoted: np.ndarray) -> np.ndarray:
    """Per item: extra demand per promotion period (promotion mean - other mean, at least 0),
    shrunk towards ``(pooled lift - 1) x the item's other mean`` while it has seen few
    promotions (see :func:`promotion_lift`)."""
    values = np.nan_to_num(values)
    on, off = promoted.sum(axis=1), (~promoted).sum(axis=1)
    on_mean = np.where(promoted, values, 0).sum(axis=1) / np.maximum(on, 1)
    off_mean = np.where(promoted, 0, values).sum(axis=1) / np.maximum(off, 1)
    with np.errstate(all="ignore"):
        pooled = (np.where(promoted, values, 0).sum() / max(on.sum(), 1)) / \
            (np.where(promoted, 0, values).sum() / max(off.sum(), 1))
    pooled = pooled if np.isfinite(pooled) and pooled > 0 else 1.0
    weight = on / (on + LIFT_PRIOR)
    return np.maximum(weight * (on_mean - off_mean) + (1 - weight) * (pooled - 1) * off_mean,
                      0.0)


@dataclass(frozen=True)
class PromotionEffect:
    """Each item's promotion effect as learnt from a history: a lift (x) or extra units (+)."""

    kind: str            # "lift" or "extra"
    size: np.ndarray     # (n,) the lift (>= 1) or the extra units per period (>= 0)

    @classmethod
    def learnt(cls, values: np.ndarray, promoted: np.ndarray, kind: str = "lift",
               pooled: np.ndarray | None = None) -> PromotionEffect:
        """The effect seen in ``values`` (items x periods) where ``promoted`` is true.

        ``pooled`` marks the items that share the pool (default: all): the items the calendar
        puts on promotion at least once, past or planned (:func:`on_the_calendar`). The pool
        compares promotion and usual levels over its items, so a catalogue of slow items never
        on promotion beside a few busy promoted ones would inflate it."""
        if kind not in EFFECTS:
            raise ConfigError(f"must be lift or extra (got {kind!r})", field="promotion_effect")
        learn = promotion_lift if kind == "lift" else promotion_extra
        if pooled is None:
            return cls(kind=kind, size=learn(values, promoted))
        pooled = np.asarray(pooled, dtype=bool)
        size = np.full(len(values), 1.0 if kind == "lift" else 0.0)
        if pooled.any():
            size[pooled] = learn(values[pooled], promoted[pooled])
        return cls(kind=kind, size=size)

    def remove(self, values: np.ndarray, promoted: np.ndarray) -> np.ndarray:
        """``values`` with the promotion periods brought back to the item's usual level."""
        if self.kind == "extra":
            return np.maximum(values - np.where(promoted, self.size[:, None], 0.0), 0.0)
        return values / np.where(promoted, self.size[:, None], 1.0)

    def demand_over(self, made: PanelForecast, periods, ahead: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray]:
        """Mean and sd of demand over ``periods`` of a forecast made on a history without its
        promotions, with the effect put back on the periods ``ahead`` (items x up to the
        forecast's horizon; missing periods are not on promotion). A lift scales the sd with
        the mean; extra units are taken as known and leave it."""
        base_mean, base_sd = made.demand_over(periods)
        if self.kind == "extra":
            return base_mean + self.size * self.periods_ahead(made, periods, ahead), base_sd
        ratio = self.ratio(made, periods, ahead)
        return base_mean * ratio, base_sd * ratio

    def ratio(self, made: PanelForecast, periods, ahead: np.ndarray) -> np.ndarray:
        """Per item: demand over ``periods`` with the lift on the promoted periods / without."""
        steps, promoted = self._window(made, periods, ahead)
        boosted = (made.point * np.where(promoted, self.size[:, None], 1.0) * steps).sum(axis=1)
        plain = (made.point * steps).sum(axis=1)
        with np.errstate(all="ignore"):
            return np.where(plain > 0, boosted / plain, 1.0)

    @staticmethod
    def periods_ahead(made: PanelForecast, periods, ahead: np.ndarray) -> np.ndarray:
        """Per item: how many of its first ``periods`` forecast periods are on promotion."""
        steps, promoted = PromotionEffect._window(made, periods, ahead)
        return (promoted & steps).sum(axis=1)

    @staticmethod
    def _window(made: PanelForecast, periods, ahead: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
        n, h = made.point.shape
        promoted = np.zeros((n, h), dtype=bool)
        known = np.asarray(ahead, dtype=bool)[:, :h]
        promoted[:, :known.shape[1]] = known
        steps = np.arange(h)[None, :] < np.asarray(periods, dtype=float).reshape(-1, 1)
        return steps, promoted


__all__ = ["LIFT_PRIOR", "PromotionEffect", "calendar_flags", "on_the_calendar",
           "promotion_extra", "promotion_lift"]
