"""Cohen's d variants (PROTOCOL §3.9)."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def cohens_d(a: jax.Array, b: jax.Array | None = None, paired: bool = True) -> jax.Array:
  """Cohen's d along the last axis.

  paired (or b=None, a = differences): d = mean(a - b) / SD(a - b, ddof=1)   (paper B, over seeds).
  unpaired: d = (mean(a) - mean(b)) / sqrt((s_a^2 + s_b^2) / 2), s with ddof=1 (paper A v2, over subjects).
  Zero spread gives +-inf (or nan for a zero difference), as the formula says. Reference: Cohen (1988), Statistical
  Power Analysis for the Behavioral Sciences, 2nd ed.
  """
  a = jnp.asarray(a, jnp.float32)
  if b is None:
    diff = a
  else:
    b = jnp.asarray(b, jnp.float32)
    if not paired:
      sa2 = jnp.var(a, axis=-1, ddof=1)
      sb2 = jnp.var(b, axis=-1, ddof=1)
      return (jnp.mean(a, axis=-1) - jnp.mean(b, axis=-1)) / jnp.sqrt((sa2 + sb2) / 2.0)
    diff = a - b
  return jnp.mean(diff, axis=-1) / jnp.std(diff, axis=-1, ddof=1)
