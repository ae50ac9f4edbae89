"""The exact integer partition every reading is built on."""

from __future__ import annotations

import numpy as np
import pytest

from simulator.model.energy import cumulative_partition, cumulative_range


@pytest.mark.parametrize("k", [1, 2, 12, 31, 96])
def test_partition_is_exact_non_negative_and_sliceable(k: int) -> None:
    rng = np.random.default_rng(k)
    totals = rng.integers(0, 3 * 10**8, 500)
    weights = rng.integers(0, 2**24, (500, k))
    if k > 1:
        weights[:50, ::2] = 0  # zero weights (solar nights) get exactly nothing
    cum = cumulative_partition(totals, weights)
    parts = np.diff(cum, axis=1)
    assert np.array_equal(cum[:, -1], totals) and np.all(cum[:, 0] == 0)
    assert parts.min() >= 0
    if k > 1:
        assert not parts[:50, ::2].any()
    # each part is within one Wh of its exact proportional share
    exact = totals[:, None] * weights / np.maximum(weights.sum(axis=1, keepdims=True), 1)
    assert np.abs(parts - exact).max() < 1.0 + 1e-6
    for first, last in ((0, 0), (0, k), (k // 2, k // 2 + 1 if k > 1 else 1), (k, k)):
        last = min(last, k)
        assert np.array_equal(cumulative_range(totals, weights, first, last), cum[:, first:last + 1])


def test_partition_refuses_to_overflow() -> None:
    with pytest.raises(OverflowError):
        cumulative_partition(np.array([2**40]), np.array([[2**30, 2**30]]))
