"""Cost per training sample does not grow with the catalogue (scaled down; measured as a ratio in one
process, so a busy machine slows both sides alike)."""

from __future__ import annotations

import pytest

from ncf.scaling import compare_step_costs, step_fitter


@pytest.mark.slow
def test_cost_per_sample_at_two_table_sizes_stays_within_1_5x():
    small = step_fitter(3000, 1500, batch_size=1024)  # the trainer's own choice: dense at this size
    large = step_fitter(150_000, 50_000, batch_size=1024)  # row-wise: 50x the rows
    assert not small[0].rowwise and large[0].rowwise
    costs = compare_step_costs({"small": small, "large": large}, seconds=6.0, rounds=6)
    assert costs["large"] / costs["small"] < 1.5, costs


@pytest.mark.slow
def test_dense_steps_grow_with_the_catalogue_where_row_wise_ones_do_not():
    """The reason for row-wise updates, pinned: at 50x the rows a dense AdamW step costs far more."""
    dense = step_fitter(150_000, 50_000, batch_size=1024, rowwise=False)
    rowwise = step_fitter(150_000, 50_000, batch_size=1024)
    costs = compare_step_costs({"dense": dense, "rowwise": rowwise}, seconds=4.0, rounds=4)
    assert costs["dense"] > 2 * costs["rowwise"], costs
