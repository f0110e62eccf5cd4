"""benchmarks/cost_model.py: loop-exact compiled costs and the roofline arithmetic behind the predicted table."""

import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import cost_model  # noqa: E402


def _ten_products(x_NxN):
  return jax.lax.fori_loop(0, 10, lambda i, x: jnp.tanh(x @ x_NxN), x_NxN)


def test_compiled_cost_counts_every_trip_of_a_loop_where_plain_cost_analysis_counts_one():
  """Ten 64x64 products: 10 x 2·64³ FLOPs (closed form); XLA's own analysis of the loop reports one trip."""
  x = jnp.ones((64, 64))
  plain = jax.jit(_ten_products).lower(x).compile().cost_analysis()
  plain = plain[0] if isinstance(plain, list) else plain
  assert plain["flops"] == pytest.approx(2 * 64**3, rel=0.01)
  cost = cost_model.compiled_cost(_ten_products, x)
  assert cost.flops == pytest.approx(10 * 2 * 64**3, rel=0.01)
  assert cost.loops_left == 0 and cost.kernels >= 10  # ten products, each its own kernel
  assert cost_model.compiled_cost(_ten_products, x).flops == cost.flops  # no trace cached from the patched scan...
  again = jax.jit(_ten_products).lower(x).compile().cost_analysis()
  assert (again[0] if isinstance(again, list) else again)["flops"] == plain["flops"]  # ...leaks out of it


def test_a_loop_without_a_static_trip_count_is_reported_as_counted_once():
  def until_large(x):
    return jax.lax.while_loop(lambda v: jnp.sum(v) < 1e6, lambda v: v @ v, x)

  assert cost_model.compiled_cost(until_large, jnp.full((8, 8), 1.1)).loops_left == 1


def test_roofline_seconds_take_the_slowest_of_compute_memory_and_launches():
  device = cost_model.Device(
    "toy", flops=1e12, bandwidth=1e11, launch_s=1e-3, compute_fraction=0.5, memory_fraction=0.5
  )
  compute_bound = cost_model.Cost(flops=1e12, bytes=1e9, kernels=1, loops_left=0)
  memory_bound = cost_model.Cost(flops=1e9, bytes=1e11, kernels=1, loops_left=0)
  launch_bound = cost_model.Cost(flops=1e6, bytes=1e6, kernels=5000, loops_left=0)
  assert compute_bound.seconds(device) == pytest.approx(2.0)  # 1e12 / (1e12 x 0.5)
  assert memory_bound.seconds(device) == pytest.approx(2.0)  # 1e11 / (1e11 x 0.5)
  assert launch_bound.seconds(device) == pytest.approx(5.0)  # 5000 x 1 ms


def test_protocol_counts_match_the_protocol():
  """PROTOCOL §1: 40 epochs of 62 steps; milestones 0 1 2 5 10 20 30 40; untrained only at epoch 0."""
  assert cost_model.STEPS == 2480
  assert cost_model.CHECKPOINTS == {"feedforward": 25, "predictive_coding": 8}
