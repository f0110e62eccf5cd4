"""Seeds over devices, and seeds in chunks that fit in memory.

Every leaf of a `TrainState` has a leading seed axis. That axis is sharded over one mesh axis, `seed`, that spans
every device of every process (`jax.make_mesh((n_dev,), ("seed",), axis_types=(AxisType.Auto,))`; Explicit axis
types break the gather-based batch sampling under vmap). Only the layout of the inputs is chosen here; GSPMD
carries it through `jit(vmap(...))`, and the training data stay replicated. A seed count that the device count does
not divide is replicated instead (correct everywhere, each device computes every seed).

Memory planning: `config.seed_chunk` seeds train at a time (0 = auto, see `auto_seed_chunk`); the state of all
seeds stays resident, each chunk is sliced out, run for a segment and put back, so 64 seeds run on any device and
every seed computes what it would have computed in one big vmap (a seed's arithmetic never depends on the others).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

AXIS = "seed"
CPU_MEMORY_FRACTION = 0.5  # share of the host's available RAM the auto chunk may plan for (CPU has no memory stats)


def seed_mesh() -> jax.sharding.Mesh:
  """A 1-D mesh named `seed` over all devices of all processes."""
  return jax.make_mesh((jax.device_count(),), (AXIS,), axis_types=(AxisType.Auto,))


def seed_sharding(n_seeds: int, mesh: jax.sharding.Mesh | None = None) -> NamedSharding:
  """`P("seed")` when the device count divides `n_seeds`, else replicated."""
  mesh = mesh or seed_mesh()
  return NamedSharding(mesh, P(AXIS) if n_seeds % mesh.size == 0 else P())


def with_seed_sharding(abstract_tree: Any, n_seeds: int) -> Any:
  """`ShapeDtypeStruct`s of a seed-stacked tree, each carrying the seed sharding (a restore target for Orbax)."""
  sharding = seed_sharding(n_seeds)
  return jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=sharding), abstract_tree)


def reshard(tree: Any, n_seeds: int) -> Any:
  """Lay a seed-stacked tree out with the seed sharding (a no-op copy-free jit when it already is)."""
  return jax.jit(lambda t: t, out_shardings=seed_sharding(n_seeds))(tree)


@partial(jax.jit, static_argnames=("seed", "n_seeds", "start", "stop"))
def _keys(*, seed, n_seeds, start, stop):
  return jax.random.split(jax.random.key(seed), n_seeds)[start:stop]


def seed_keys(seed: int, n_seeds: int, start: int = 0, stop: int | None = None) -> jax.Array:
  """`loop.seed_keys(seed, n_seeds)[start:stop]`, created directly with the seed sharding (every process agrees)."""
  stop = n_seeds if stop is None else stop
  return jax.jit(
    partial(_keys, seed=seed, n_seeds=n_seeds, start=start, stop=stop), out_shardings=seed_sharding(stop - start)
  )()


def to_host(tree: Any) -> Any:
  """NumPy copies of a tree; arrays spread over other processes are gathered first (all processes must call)."""

  def get(x):
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
      from jax.experimental import multihost_utils

      return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return np.asarray(jax.device_get(x))

  return jax.tree.map(get, tree)


# ---------------------------------------------------------------------------------------------- seed chunks


def chunk_bounds(n_seeds: int, chunk: int) -> list[tuple[int, int]]:
  chunk = max(1, min(chunk, n_seeds))
  return [(a, min(a + chunk, n_seeds)) for a in range(0, n_seeds, chunk)]


@partial(jax.jit, static_argnames=("start", "stop", "out"))
def _slice(tree, *, start, stop, out):
  return jax.lax.with_sharding_constraint(jax.tree.map(lambda x: x[start:stop], tree), out)


def take_seeds(tree: Any, start: int, stop: int) -> Any:
  """Seeds `start:stop` of a seed-stacked tree, laid out for a chunk of that size."""
  return _slice(tree, start=start, stop=stop, out=seed_sharding(stop - start))


def concat_seeds(trees: list[Any]) -> Any:
  """Concatenate seed-stacked trees along the seed axis, laid out for the total."""
  n = sum(jax.tree.leaves(t)[0].shape[0] for t in trees)
  return jax.jit(lambda ts: jax.tree.map(lambda *xs: jnp.concatenate(xs), *ts), out_shardings=seed_sharding(n))(trees)


def run_chunked(run_segment: Callable, state: Any, keys: jax.Array, n_steps: int, chunk: int):
  """`run_segment(state, keys, n_steps)` in chunks of `chunk` seeds; returns `(state, metrics)` for all seeds."""
  n_seeds = keys.shape[0]
  if chunk <= 0 or chunk >= n_seeds:
    return run_segment(state, keys, n_steps)
  states, metrics = [], []
  for a, b in chunk_bounds(n_seeds, chunk):
    s, m = run_segment(take_seeds(state, a, b), take_seeds(keys, a, b), n_steps)
    states.append(s)
    metrics.append(m)
  return concat_seeds(states), concat_seeds(metrics)


def device_memory_budget() -> int:
  """Bytes one device may plan for: its allocator limit minus what is in use (GPU/TPU), else a share of free RAM.

  CPU devices report no memory stats; they share the host's RAM, so the budget is `CPU_MEMORY_FRACTION` of the
  available physical memory divided by the number of local devices.
  """
  dev = jax.local_devices()[0]
  stats = None
  try:
    stats = dev.memory_stats()
  except Exception:  # noqa: BLE001 - backends without stats
    stats = None
  if stats and stats.get("bytes_limit"):
    return int(stats["bytes_limit"] - stats.get("bytes_in_use", 0))
  try:
    avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
  except (ValueError, OSError, AttributeError):
    avail = 8 << 30
  return int(CPU_MEMORY_FRACTION * avail / jax.local_device_count())


def compiled_bytes(run_segment: Callable, abstract_state: Callable, n_seeds: int, n_steps: int = 1) -> int:
  """Per-device bytes (arguments + outputs + temporaries − donated aliases) of a compiled `n_seeds` segment."""
  state = with_seed_sharding(abstract_state(n_seeds), n_seeds)
  keys = jax.ShapeDtypeStruct(
    (n_seeds,), jax.eval_shape(lambda: jax.random.key(0)).dtype, sharding=seed_sharding(n_seeds)
  )
  m = run_segment.lower(state, keys, n_steps).compile().memory_analysis()
  if m is None:
    raise RuntimeError("no memory analysis on this backend")
  return int(m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes - m.alias_size_in_bytes)


def auto_seed_chunk(
  run_segment: Callable, abstract_state: Callable, n_seeds: int, *, n_steps: int = 1, budget_bytes: int | None = None
) -> int:
  """The largest multiple of the device count (≤ `n_seeds`) whose training segment fits the per-device budget.

  Without a memory analysis the fallback heuristic is the fixed 64 MiB + 150 MiB per protocol-sized seed (batch
  128, 32 px; XLA's temporaries per step at the protocol widths, measured on CPU) against the same budget.
  """
  return largest_fitting_chunk(
    lambda k: compiled_bytes(run_segment, abstract_state, k, n_steps),
    n_seeds,
    budget_bytes=budget_bytes,
    fallback=(64 << 20, 150 << 20),
  )


def largest_fitting_chunk(
  bytes_for: Callable[[int], int], n_seeds: int, *, fallback: tuple[int, int], budget_bytes: int | None = None
) -> int:
  """The largest multiple of the device count (≤ `n_seeds`) for which `bytes_for(seeds)` (per-device bytes of the
  compiled program) fits the per-device memory budget.

  Memory is roughly linear in the seeds per device, so two AOT compiles (one and two seeds per device) give its
  fixed and per-seed parts; when the whole run fits, that is checked first (one compile). XLA's buffer reuse makes
  small programs far from linear in the seeds (the same bytes for one and two seeds of a tiny CNN), so the
  linear guess is then compiled and shrunk in proportion to its overshoot until it fits. `fallback = (fixed, per
  seed)` bytes stand in where the backend has no memory analysis.
  """
  n_dev = jax.device_count()
  budget = device_memory_budget() if budget_bytes is None else budget_bytes
  if n_seeds <= n_dev:
    return n_seeds
  try:
    if bytes_for(n_seeds) <= budget:
      return n_seeds
    one, two = bytes_for(n_dev), bytes_for(2 * n_dev)
    per_seed_per_dev, fixed = max(two - one, 1), max(2 * one - two, 0)
    measured = True
  except Exception:  # noqa: BLE001 - backend without AOT memory analysis
    (fixed, per_seed_per_dev), measured = fallback, False
  chunk = int(min(n_seeds, max(1, (budget - fixed) // per_seed_per_dev) * n_dev))
  while measured and chunk > n_dev:
    need = bytes_for(chunk)
    if need <= budget:
      break
    chunk = max(n_dev, min(chunk - n_dev, int(chunk * budget / need) // n_dev * n_dev))
  return chunk


def plan_seed_chunk(
  config_chunk: int, run_segment: Callable, abstract_state: Callable, n_seeds: int, n_steps: int = 1
) -> int:
  """`config.seed_chunk` if positive, else `auto_seed_chunk`; never more than `n_seeds`."""
  if config_chunk and config_chunk > 0:
    return min(int(config_chunk), n_seeds)
  return auto_seed_chunk(run_segment, abstract_state, n_seeds, n_steps=n_steps)
