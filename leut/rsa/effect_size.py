"""Cohen's d variants (PROTOCOL §3.9)."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def cohens_d(a: jax.Array, b: jax.Array | None = None, paired: bool = True) -> jax.Array:
  """Cohen's d along the last axis.

  paired (or b=None, a = differences): d = mean(a - b) / SD(a - b, ddof=1)   (paper B, over seeds).
  unpaired: d = (mean(a) - mean(b)) / sqrt((s_a^2 + s_b^2) / 2), s with ddof=1 (paper A v2, over subjects).
  Not defined (NaN): zero spread (every difference equal: the formula would give ±inf, or 0/0; a spread below
  1e-6 of the largest |value|, float rounding, counts as zero, the sign-flip test's tie tolerance), fewer than two
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
      scale = jnp.maximum(jnp.max(jnp.abs(a), axis=-1), jnp.max(jnp.abs(b), axis=-1))
      return _ratio(jnp.mean(a, axis=-1) - jnp.mean(b, axis=-1), jnp.sqrt((sa2 + sb2) / 2.0), scale)
    diff = a - b
  return _ratio(jnp.mean(diff, axis=-1), jnp.std(diff, axis=-1, ddof=1), jnp.max(jnp.abs(diff), axis=-1))


ZERO_SPREAD = 1e-6  # relative to the largest |value|: below it the spread is float rounding


def _ratio(mean, sd, scale):
  """mean / sd where sd is finite and above `ZERO_SPREAD * scale`, else NaN (zero spread: d is not defined)."""
  ok = jnp.isfinite(mean) & jnp.isfinite(sd) & (sd > ZERO_SPREAD * scale) & (sd > 0)
  return jnp.where(ok, mean / jnp.where(ok, sd, 1.0), jnp.nan)
