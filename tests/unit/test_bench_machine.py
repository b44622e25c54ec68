"""The machine description that benchmark results carry."""

from __future__ import annotations

from bench import machine


def test_a_result_names_its_cpu_and_times_both_references(monkeypatch) -> None:
    monkeypatch.setattr(machine, "LOOP_STEPS", 200_000)
    monkeypatch.setattr(machine, "ARRAY_ROUNDS", 1)
    described = machine.describe()
    assert described["cpu"] and described["cores"] >= 1
    assert described["reference_python_loop_seconds"] > 0
    assert described["reference_numpy_seconds"] > 0


def test_the_references_scale_with_their_work(monkeypatch) -> None:
    # Twenty times the loop must take clearly longer: the timing measures the work, not noise.
    monkeypatch.setattr(machine, "LOOP_STEPS", 100_000)
    short = machine._best(machine._python_loop)
    monkeypatch.setattr(machine, "LOOP_STEPS", 2_000_000)
    assert machine._best(machine._python_loop) > 5 * short
