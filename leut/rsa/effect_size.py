"""Cohen's d variants (PROTOCOL §3.9)."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def cohens_d(a: jax.Array, b: jax.Array | None = None, paired: bool = True) -> jax.Array:
  """Cohen's d along the last axis.

  paired (or b=None, a = differences): d = mean(a - b) / SD(a - b, ddof=1)   (paper B, over seeds).
  unpaired: d = (mean(a) - mean(b)) / sqrt((s_a^2 + s_b^2) / 2), s with ddof=1 (paper A v2, over subjects).
  Not defined (NaN): zero spread (every difference equal: the formula would give ±inf, or 0/0), fewer than two
  values, or a NaN/inf value. Reference: Cohen (1988), Statistical Power Analysis for the Behavioral Sciences, 2nd ed.
  """
  a = jnp.asarray(a, jnp.float32)
  if b is None:
    diff = a
  else:
    b = jnp.asarray(b, jnp.float32)
    if not paired:
      sa2 = jnp.var(a, axis=-1, ddof=1)
      sb2 = jnp.var(b, axis=-1, ddof=1)
      return _ratio(jnp.mean(a, axis=-1) - jnp.mean(b, axis=-1), jnp.sqrt((sa2 + sb2) / 2.0))
    diff = a - b
  return _ratio(jnp.mean(diff, axis=-1), jnp.std(diff, axis=-1, ddof=1))


def _ratio(mean, sd):
  """mean / sd where sd is a positive finite number, else NaN (zero spread: d is not defined)."""
  ok = jnp.isfinite(mean) & jnp.isfinite(sd) & (sd > 0)
  return jnp.where(ok, mean / jnp.where(ok, sd, 1.0), jnp.nan)
