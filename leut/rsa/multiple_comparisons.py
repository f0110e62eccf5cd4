"""Multiple-comparison adjustments along the last axis (PROTOCOL §3.8), equal to statsmodels `multipletests`."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def fdr_bh(p: jax.Array) -> jax.Array:
  """Benjamini-Hochberg adjusted p-values: p_adj(i) = min_{k >= i} min(1, p_(k) n / k) in sorted order.

  Reject at level alpha where `fdr_bh(p) <= alpha`. Jittable, batched over leading axes (family = last axis).
  Reference: Benjamini & Hochberg (1995); = `multipletests(p, method="fdr_bh")[1]`. A family with a NaN p (or any
  value outside [0, 1]) is all NaN: its size is unknown; drop undefined tests first (`leut.report.seed_stats.fdr`).
  """
  p = jnp.asarray(p, jnp.float32)
  n = p.shape[-1]
  order = jnp.argsort(p, axis=-1)
  ps = jnp.take_along_axis(p, order, axis=-1)
  k = jnp.arange(1, n + 1, dtype=jnp.float32)
  scaled = ps * (n / k).reshape((1,) * (p.ndim - 1) + (n,))
  adj = jnp.minimum(jax.lax.cummin(scaled, axis=p.ndim - 1, reverse=True), 1.0)
  return _whole_family(_unsort(adj, order), p)


def holm(p: jax.Array) -> jax.Array:
  """Holm step-down adjusted p-values: p_adj(i) = max_{k <= i} min(1, (n - k + 1) p_(k)) in sorted order.

  Reference: Holm (1979); = `multipletests(p, method="holm")[1]`. Jittable, batched over leading axes. A family with
  a NaN p (or any value outside [0, 1]) is all NaN, as for `fdr_bh`.
  """
  p = jnp.asarray(p, jnp.float32)
  n = p.shape[-1]
  order = jnp.argsort(p, axis=-1)
  ps = jnp.take_along_axis(p, order, axis=-1)
  k = jnp.arange(1, n + 1, dtype=jnp.float32)
  scaled = jnp.minimum(ps * (n - k + 1.0).reshape((1,) * (p.ndim - 1) + (n,)), 1.0)
  return _whole_family(_unsort(jax.lax.cummax(scaled, axis=p.ndim - 1), order), p)


def _unsort(vals, order):
  inv = jnp.argsort(order, axis=-1)
  return jnp.take_along_axis(vals, inv, axis=-1)


def _whole_family(adj, p):
  """NaN over the whole family (last axis) when any p is not a probability."""
  ok = jnp.all((p >= 0) & (p <= 1), axis=-1, keepdims=True)
  return jnp.where(ok, adj, jnp.nan)
