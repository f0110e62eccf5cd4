"""Noise-ceiling normalisation of encoding scores, over the targets reliable enough to be scored."""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

__all__ = ["CeiledScores", "ceiling_normalise", "ceiling_from_percent"]


class CeiledScores(NamedTuple):
  kept_T: jax.Array  # targets whose ceiling exceeds the threshold
  normalised_NxT: jax.Array  # r / ceiling on kept targets, NaN elsewhere
  summary_N: jax.Array  # median of normalised_NxT over kept targets with a defined r (NaN when none)
  raw_summary_N: jax.Array  # median raw r over the same targets
  n_defined_N: jax.Array  # kept targets with a defined r, per seed


def ceiling_from_percent(noise_ceiling_pct_T) -> jax.Array:
  """A noise ceiling in % of explainable variance (THINGS-fMRI's ``nc_testset``/``nc_singletrial``) as the
  correlation it bounds: sqrt(nc / 100). Brain-Score's 30 % voxel filter is a ceiling of sqrt(0.3) = 0.548."""
  return jnp.sqrt(jnp.clip(jnp.asarray(noise_ceiling_pct_T, jnp.float32), 0.0) / 100.0)


# One compiled program per shape: the scoring calls it per ROI, subject, layer and checkpoint (and per seed on a
# thousand bootstrap resamples), where running its reductions op by op cost more than the statistics themselves.
@functools.partial(jax.jit, static_argnames=("min_ceiling",))
def ceiling_normalise(r_NxT: jax.Array, ceiling_T: jax.Array, *, min_ceiling: float = 0.3) -> CeiledScores:
  """Per-target r / ceiling over targets with ceiling > ``min_ceiling``, and its median per seed.

  ``ceiling_T`` is in correlation units: a neuron's split-half reliability (Spearman-Brown corrected,
  ``ResponseData.neuroids.reliability``) or ``ceiling_from_percent`` of a voxel noise ceiling. Selecting reliable
  targets before normalising keeps the ratio away from division by a ceiling near 0 (Brain-Score keeps THINGS-fMRI
  voxels with a 30 % ceiling and TVSD electrodes with reliability 0.3). A target with an undefined r stays NaN and
  is left out of the medians; ``n_defined_N`` counts what remains.
  """
  r = jnp.asarray(r_NxT, jnp.float32)
  c = jnp.asarray(ceiling_T, jnp.float32)
  kept = jnp.isfinite(c) & (c > min_ceiling)
  normalised = jnp.where(kept[None, :], r / jnp.where(kept, c, 1.0)[None, :], jnp.nan)
  raw = jnp.where(kept[None, :], r, jnp.nan)
  defined = jnp.sum(jnp.isfinite(normalised), axis=1)
  summary = jnp.where(defined > 0, jnp.nanmedian(normalised, axis=1), jnp.nan)
  raw_summary = jnp.where(defined > 0, jnp.nanmedian(raw, axis=1), jnp.nan)
  return CeiledScores(kept, normalised, summary, raw_summary, defined)
