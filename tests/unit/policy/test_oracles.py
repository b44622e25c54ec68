"""Every stockpyl oracle case in shared/data/oracles/stockpyl_cases.json, reproduced to 1e-6."""

from __future__ import annotations

import json

import pytest

from restock.policy import models, safety
from restock.policy.loss import normal_loss

CASE_IDS = [
    "newsvendor_normal_ex4_3", "newsvendor_normal_cost_at_S60", "newsvendor_normal_leadtime3",
    "newsvendor_poisson", "newsvendor_normal_explicit_ex4_2", "base_stock_cycle_service_90",
    "base_stock_cycle_service_95", "base_stock_cycle_service_99",
    "reorder_point_cycle_service_95_continuous", "base_stock_fill_rate_95",
    "base_stock_fill_rate_99", "eoq_ex3_1", "eoqb_ex3_8", "rq_cost_ex5_1", "rq_eil_ex5_2",
    "rq_eoqb", "rq_eoqss_ex5_5", "rq_loss_function_ex5_6", "rq_optimal_r_for_Q300",
    "rq_poisson_exact_ex5_8", "sS_exact_poisson_ex4_7", "sS_cost_at_4_10",
    "sS_power_approximation", "man_item_MAN_506", "man_item_MAN_2571",
]


@pytest.fixture(scope="module")
def cases(shared_data):
    data = json.loads((shared_data / "oracles" / "stockpyl_cases.json").read_text())
    return {case["id"]: case for case in data["cases"]}


def _newsvendor(i):
    level, cost = models.newsvendor_normal(i["holding_cost"], i["stockout_cost"],
                                           i["demand_mean"], i["demand_sd"], i["lead_time"],
                                           level=i.get("base_stock_level"))
    return {"base_stock_level": level, "expected_cost": cost}


def _base_stock_cycle(i):
    mu, sd, lead = i["demand_mean_per_period"], i["demand_sd_per_period"], i["lead_time_periods"]
    level = float(safety.order_up_to_level(mu, sd, lead, 1.0,
                                           cycle_service=i["target_cycle_service_level"]))
    mean, sigma = safety.protection_demand(mu, sd, lead, 1.0)
    cost_level, _ = models.newsvendor_normal(i["holding_cost"], i["stockout_cost"], mu, sd, lead)
    backorders = float(normal_loss(level, mean, sigma))
    assert cost_level == pytest.approx(level, rel=1e-9)   # same level as the newsvendor form
    return {"base_stock_level": level, "safety_stock": level - mean,
            "z": (level - mean) / sigma, "expected_backorders_per_period_n_S": backorders,
            "implied_fill_rate_1_minus_n_over_mu": float(safety.fill_rate_of(level, mean,
                                                                              sigma, mu))}


def _base_stock_fill(i):
    mu, sd, lead = i["demand_mean_per_period"], i["demand_sd_per_period"], i["lead_time_periods"]
    level = float(safety.order_up_to_level(mu, sd, lead, 1.0, fill_rate=i["target_fill_rate"]))
    mean, sigma = safety.protection_demand(mu, sd, lead, 1.0)
    return {"base_stock_level": level, "safety_stock": level - mean,
            "implied_cycle_service": float(safety.cycle_service_of(level, mean, sigma))}


def _reorder_point(i):
    r = float(safety.reorder_point(i["demand_mean_per_period"], i["demand_sd_per_period"],
                                   i["lead_time_periods"],
                                   cycle_service=i["target_cycle_service_level"]))
    return {"reorder_point": r,
            "safety_stock": r - i["demand_mean_per_period"] * i["lead_time_periods"]}


def _rq_args(i):
    return (i["holding_cost"], i["stockout_cost"], i["fixed_cost"], i["demand_mean"],
            i["demand_sd"], i["lead_time"])


def _rq_exact(i, r, q):
    return models.rq_cost(r, q, i["holding_cost"], i["stockout_cost"], i["fixed_cost"],
                          i["demand_mean"], i["demand_sd"], i["lead_time"])


def _man_item(i):
    h, p, k = i["holding_cost_per_unit_week"], i["stockout_cost_per_unit_week"], i["fixed_cost"]
    mean, sd, lead = i["demand_mean_per_week"], i["demand_sd_per_week"], i["lead_time_weeks"]
    eoq, eoq_cost = models.economic_order_quantity(k, h, mean)
    args = {"holding_cost": h, "stockout_cost": p, "fixed_cost": k, "demand_mean": mean,
            "demand_sd": sd, "lead_time": lead}
    r1, q1 = models.rq_eoqss_approximation(*_rq_args(args))
    r2, q2 = models.rq_loss_function_approximation(*_rq_args(args))
    return {"eoq": eoq, "eoq_cost": eoq_cost, "rq_eoqss_r": r1, "rq_eoqss_Q": q1,
            "rq_eoqss_exact_cost": _rq_exact(args, r1, q1), "rq_lossfn_r": r2,
            "rq_lossfn_Q": q2, "rq_lossfn_exact_cost": _rq_exact(args, r2, q2)}


def _pair(keys, values):
    return dict(zip(keys, values, strict=True))


SOLVERS = {
    "newsvendor_normal_ex4_3": _newsvendor,
    "newsvendor_normal_cost_at_S60": _newsvendor,
    "newsvendor_normal_leadtime3": _newsvendor,
    "newsvendor_poisson": lambda i: _pair(("base_stock_level", "expected_cost"),
                                          models.newsvendor_poisson(
                                              i["holding_cost"], i["stockout_cost"],
                                              i["demand_mean"])),
    "newsvendor_normal_explicit_ex4_2": lambda i: _pair(
        ("base_stock_level", "expected_profit"),
        models.newsvendor_explicit(i["revenue"], i["purchase_cost"], i["salvage_value"],
                                   i["demand_mean"], i["demand_sd"])),
    "base_stock_cycle_service_90": _base_stock_cycle,
    "base_stock_cycle_service_95": _base_stock_cycle,
    "base_stock_cycle_service_99": _base_stock_cycle,
    "reorder_point_cycle_service_95_continuous": _reorder_point,
    "base_stock_fill_rate_95": _base_stock_fill,
    "base_stock_fill_rate_99": _base_stock_fill,
    "eoq_ex3_1": lambda i: _pair(("order_quantity", "cost"), models.economic_order_quantity(
        i["fixed_cost"], i["holding_cost"], i["demand_rate"])),
    "eoqb_ex3_8": lambda i: _pair(("order_quantity", "stockout_fraction", "cost"),
                                  models.economic_order_quantity_with_backorders(
                                      i["fixed_cost"], i["holding_cost"], i["stockout_cost"],
                                      i["demand_rate"])),
    "rq_cost_ex5_1": lambda i: {"cost": _rq_exact(i, i["reorder_point"], i["order_quantity"])},
    "rq_eil_ex5_2": lambda i: _pair(("reorder_point", "order_quantity", "cost"),
                                    models.rq_eil_approximation(*_rq_args(i))),
    "rq_eoqb": lambda i: _with_exact(i, models.rq_eoqb_approximation(*_rq_args(i))),
    "rq_eoqss_ex5_5": lambda i: _with_exact(i, models.rq_eoqss_approximation(*_rq_args(i))),
    "rq_loss_function_ex5_6": lambda i: _with_exact(
        i, models.rq_loss_function_approximation(*_rq_args(i))),
    "rq_optimal_r_for_Q300": lambda i: {"reorder_point": models.rq_optimal_r_for_q(
        i["order_quantity"], i["holding_cost"], i["stockout_cost"], i["demand_mean"],
        i["demand_sd"], i["lead_time"])},
    "rq_poisson_exact_ex5_8": lambda i: _pair(
        ("reorder_point", "order_quantity", "cost"),
        models.rq_poisson_exact(i["holding_cost"], i["stockout_cost"], i["fixed_cost"],
                                i["demand_mean"], i["lead_time"])),
    "sS_exact_poisson_ex4_7": lambda i: _pair(
        ("reorder_point", "order_up_to_level", "cost"),
        models.ss_optimal_discrete(i["holding_cost"], i["stockout_cost"], i["fixed_cost"],
                                   i["demand_mean"])),
    "sS_cost_at_4_10": lambda i: {"cost": models.ss_cost_discrete(
        i["reorder_point"], i["order_up_to_level"], i["holding_cost"], i["stockout_cost"],
        i["fixed_cost"], i["demand_mean"])},
    "sS_power_approximation": lambda i: _pair(
        ("reorder_point", "order_up_to_level"),
        models.ss_power_approximation(i["holding_cost"], i["stockout_cost"], i["fixed_cost"],
                                      i["demand_mean"], i["demand_sd"])),
    "man_item_MAN_506": _man_item,
    "man_item_MAN_2571": _man_item,
}


def _with_exact(i, rq):
    r, q = rq
    return {"reorder_point": r, "order_quantity": q, "exact_cost": _rq_exact(i, r, q)}


def test_every_oracle_case_has_a_solver(cases):
    assert sorted(cases) == sorted(CASE_IDS) == sorted(SOLVERS)


@pytest.mark.parametrize("case_id", CASE_IDS)
def test_oracle_case(cases, case_id):
    case = cases[case_id]
    got = SOLVERS[case_id](case["inputs"])
    for key, expected in case["outputs"].items():
        assert got[key] == pytest.approx(expected, rel=1e-6, abs=1e-6), key
    for key, expected in case.get("independent_crosscheck", {}).items():
        if key in ("scipy_quantile", "scipy_poisson_ppf", "closed_form"):
            first = next(iter(case["outputs"].values()))
            assert first == pytest.approx(expected, rel=1e-9)
