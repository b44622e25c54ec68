"""Replenishment policy: from positions and forecasts to order lines, under real constraints.

The contract the cycle relies on: ``plan(items, offers, policy) -> Plan``.

``items`` has one row per SKU: sku, category, description, on_hand, allocated, on_order,
backorders, demand_rate (expected units per day), demand_sd (sd of daily demand forecast error;
totals over a horizon scale with its square root), and optionally usual_order_qty and
forecast_confidence (0..1). ``offers`` is the Snapshot's offers frame. Every line and every skipped
need carries its reasons.

The library face (documented in docs/policy.md): safety stock and reorder points for a cycle
service level or a fill rate (:mod:`restock.policy.safety`), loss functions
(:mod:`restock.policy.loss`), and the textbook models — newsvendor, EOQ, (r, Q), (s, S)
(:mod:`restock.policy.models`); the service feedback shared by the replay and the live planner
(:mod:`restock.policy.feedback`), and the level a per-item cycle target asks of the formula
when an order outlasts a review cycle (:mod:`restock.policy.exposure`).
"""

from __future__ import annotations

from restock.policy.empirical import error_levels, pooled_error_levels
from restock.policy.exposure import exposed_level
from restock.policy.feedback import (
                                 FEEDBACK_LIMIT,
                                 FEEDBACK_PRIOR,
                                 LOWEST_ASKED,
                                 GroupShift,
                                 ServiceRecord,
                                 corrected_level,
                                 service_correction,
)
from restock.policy.levels import Levels, pooled_cycle_z, pooled_fill_z, stock_levels
from restock.policy.loss import (
                                 discrete_loss,
                                 inverse_standard_normal_loss,
                                 normal_loss,
                                 normal_second_loss,
                                 poisson_loss,
                                 standard_normal_loss,
)
from restock.policy.models import (
                                 economic_order_quantity,
                                 economic_order_quantity_with_backorders,
                                 newsvendor_explicit,
                                 newsvendor_normal,
                                 newsvendor_poisson,
                                 rq_cost,
                                 rq_cost_poisson,
                                 rq_eil_approximation,
                                 rq_eoqb_approximation,
                                 rq_eoqss_approximation,
                                 rq_loss_function_approximation,
                                 rq_optimal_r_for_q,
                                 rq_poisson_exact,
                                 ss_cost_discrete,
                                 ss_optimal_discrete,
                                 ss_power_approximation,
)
from restock.policy.plan import Plan, plan
from restock.policy.quantity import whole_packs
from restock.policy.safety import (
                                 cycle_service_of,
                                 discrete_level,
                                 fill_rate_of,
                                 order_up_to_level,
                                 protection_demand,
                                 reorder_point,
                                 safety_stock_cycle,
                                 safety_stock_fill_rate,
)

__all__ = [
    "FEEDBACK_LIMIT", "FEEDBACK_PRIOR", "LOWEST_ASKED", "GroupShift", "Levels", "Plan",
    "ServiceRecord", "corrected_level", "cycle_service_of", "discrete_level", "discrete_loss",
    "economic_order_quantity", "economic_order_quantity_with_backorders", "error_levels",
    "exposed_level", "fill_rate_of",
    "inverse_standard_normal_loss", "newsvendor_explicit", "newsvendor_normal",
    "newsvendor_poisson", "normal_loss", "normal_second_loss", "order_up_to_level", "plan",
    "poisson_loss", "pooled_cycle_z", "pooled_error_levels", "pooled_fill_z", "protection_demand", "reorder_point", "rq_cost",
    "rq_cost_poisson", "rq_eil_approximation", "rq_eoqb_approximation", "rq_eoqss_approximation",
    "rq_loss_function_approximation", "rq_optimal_r_for_q", "rq_poisson_exact",
    "safety_stock_cycle", "safety_stock_fill_rate", "service_correction", "ss_cost_discrete", "ss_optimal_discrete",
    "ss_power_approximation", "standard_normal_loss", "stock_levels", "whole_packs",
]
