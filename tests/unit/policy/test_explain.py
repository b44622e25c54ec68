"""The numbers in reasons: a column formatted at once reads exactly as each value alone."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from restock.policy.explain import Columns, num, texts

VALUES = [3.0, 1234567.891, 0.004, -0.0, 2.5, 3.0, float("nan"), float("inf"), 12.1, 2.5]


def test_num_writes_two_decimals_at_most_with_thousands_separated():
    assert [num(v) for v in (3.0, 1234567.891, 0.004, -0.0, 2.5, 12.10)] == \
        ["3", "1,234,567.89", "0", "0", "2.5", "12.1"]


@pytest.mark.parametrize("dtype", [float, np.float32, object])
def test_a_column_reads_as_its_values_one_by_one(dtype):
    column = np.array(VALUES, dtype=dtype)
    assert texts(column) == [num(float(v)) for v in column]


def test_whole_numbers_and_a_missing_column():
    frame = pd.DataFrame({"packs": [1, 12, 12, 1500], "flag": [True, False, True, True]})
    columns = Columns(frame)
    assert columns.text("packs") == ["1", "12", "12", "1,500"]
    assert columns.floats("packs") == [1.0, 12.0, 12.0, 1500.0]
    assert columns.get("absent", 0.5) == [0.5] * 4
    assert columns["flag"] == [True, False, True, True]
