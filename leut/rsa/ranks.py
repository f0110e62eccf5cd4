"""Average ranks (ties and multiplicities) as jittable kernels batched over leading axes.

Non-finite input (policy shared by every kernel of `leut.rsa`): a NaN or ±inf among the kept entries (weight > 0)
makes the whole row NaN; entries with weight 0 are ignored, whatever their value.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from leut.rsa.precision import HIGHEST


def _flat_lead(x_P):
  return x_P.reshape((-1, x_P.shape[-1])), x_P.shape[:-1]


def rank_average(x_P: jax.Array, weights_P: jax.Array | None = None) -> jax.Array:
  """Average ranks along the last axis, `...xP -> ...xP` (1-based, float32).

  With `weights_P = None` this is `scipy.stats.rankdata(x, method="average")`. With non-negative integer weights, entry
  p stands for `w_p` copies of `x_p` and gets the average rank its copies would have in the expanded multiset:

    r_p = sum_{q: x_q < x_p} w_q + (sum_{q: x_q = x_p} w_q + 1) / 2.

  Entries with weight 0 are ignored by every other entry (they get the rank they would have if inserted). This one
  kernel serves pair masks (weights 0/1) and stimulus-bootstrap multiplicities. Cost: one sort per row.
  A row with a non-finite kept entry is all NaN (as `rankdata(..., nan_policy="propagate")`); a non-finite entry of
  weight 0 gets rank NaN and leaves the others alone.
  """
  x_P = jnp.asarray(x_P)
  if weights_P is None:
    weights_P = jnp.ones(x_P.shape, jnp.float32)
  weights_P = jnp.broadcast_to(jnp.asarray(weights_P, jnp.float32), x_P.shape)
  xf_NxP, lead = _flat_lead(x_P)
  wf_NxP, _ = _flat_lead(weights_P)
  r_NxP = jax.vmap(_rank_one)(xf_NxP, wf_NxP)
  r_NxP = jnp.where(kept_non_finite(xf_NxP, wf_NxP)[:, None], jnp.nan, r_NxP)
  return r_NxP.reshape(lead + (x_P.shape[-1],))


def kept_non_finite(x_P: jax.Array, weights_P: jax.Array | None = None) -> jax.Array:
  """`...`: True where a kept entry (weight > 0; every entry without weights) of the last axis is NaN or ±inf."""
  bad = ~jnp.isfinite(x_P)
  if weights_P is not None:
    bad = bad & (jnp.broadcast_to(jnp.asarray(weights_P), bad.shape) > 0)
  return jnp.any(bad, axis=-1)


def _rank_one(x_P, w_P):
  order_P = jnp.argsort(x_P, stable=True)
  xs_P = x_P[order_P]
  ws_P = w_P[order_P]
  return jnp.zeros_like(ws_P).at[order_P].set(sorted_ranks(xs_P, ws_P), unique_indices=True)


def blocked_cumsum(x_P: jax.Array, block: int = 16) -> jax.Array:
  """Inclusive cumulative sum of a 1-D array: in-block sums as a matmul with a triangular ones matrix, plus block
  offsets from the same routine on the block totals (recursive).

  XLA:CPU lowers `jnp.cumsum` to an associative scan with many passes; this form is ~4x cheaper on CPU. It is exact
  for integer-valued float32 inputs whose total stays below 2**24 (bootstrap multiplicities).
  """
  P = x_P.shape[-1]
  if P <= 4 * block or block < 2:
    return jnp.cumsum(x_P, axis=-1)
  R = -(-P // block)
  v_RxK = jnp.pad(x_P, (0, R * block - P)).reshape(R, block)
  tri_KxK = jnp.triu(jnp.ones((block, block), x_P.dtype))
  within_RxK = jnp.dot(v_RxK, tri_KxK, precision=HIGHEST)
  tot_R = within_RxK[:, -1]
  off_R = blocked_cumsum(tot_R, block) - tot_R
  return (within_RxK + off_R[:, None]).reshape(-1)[:P]


def sorted_ranks(xs_P: jax.Array, ws_P: jax.Array) -> jax.Array:
  """Average ranks of already-sorted values `xs_P` with weights `ws_P` (both in sorted order), last axis."""
  incl_P = jnp.cumsum(ws_P, axis=-1) if ws_P.ndim != 1 else blocked_cumsum(ws_P)
  excl_P = incl_P - ws_P
  first = jnp.ones(xs_P.shape[:-1] + (1,), bool)
  start_P = jnp.concatenate([first, xs_P[..., 1:] != xs_P[..., :-1]], axis=-1)
  end_P = jnp.concatenate([xs_P[..., 1:] != xs_P[..., :-1], first], axis=-1)
  # Cumulative sums are non-decreasing, so a running max (min, reversed) carries each tie group's boundary value.
  before_P = jax.lax.cummax(jnp.where(start_P, excl_P, 0.0), axis=xs_P.ndim - 1)
  through_P = jax.lax.cummin(jnp.where(end_P, incl_P, jnp.inf), axis=xs_P.ndim - 1, reverse=True)
  return jnp.where(jnp.isfinite(xs_P), 0.5 * (before_P + through_P + 1.0), jnp.nan)  # NaN/inf have no rank


def centred_unit(v_P: jax.Array, weights_P: jax.Array | None = None) -> jax.Array:
  """Weighted-centred, unit-norm version of `v` along the last axis, zero where the weight is 0.

  z_p = sqrt(w_p) (v_p - m) / sqrt(sum_q w_q (v_q - m)^2), m = sum w v / sum w, so that sum_p z_p z'_p is the weighted
  Pearson correlation. Undefined rows are all NaN, so every correlation built from them is NaN: fewer than two kept
  entries (an empty pair mask, a single pair, two stimuli), kept entries that are all equal (a constant vector: 0/0),
  or a non-finite kept entry. Entries of weight 0 are ignored, whatever their value.
  """
  v_P = jnp.asarray(v_P, jnp.float32)
  if weights_P is None:
    c_P = v_P - jnp.mean(v_P, axis=-1, keepdims=True)
    keep_P = jnp.ones(v_P.shape, bool)
  else:
    w_P = jnp.broadcast_to(jnp.asarray(weights_P, jnp.float32), v_P.shape)
    keep_P = w_P > 0
    v_P = jnp.where(keep_P, v_P, 0.0)
    m = jnp.sum(w_P * v_P, axis=-1, keepdims=True) / jnp.maximum(jnp.sum(w_P, axis=-1, keepdims=True), 1.0)
    c_P = jnp.sqrt(w_P) * (v_P - m)
  n = jnp.sqrt(jnp.sum(c_P * c_P, axis=-1, keepdims=True))
  # Checked on the values, not on n: a constant row's centred values need not round to exactly 0.
  varies = jnp.max(jnp.where(keep_P, v_P, -jnp.inf), axis=-1, keepdims=True) > jnp.min(
    jnp.where(keep_P, v_P, jnp.inf), axis=-1, keepdims=True
  )
  defined = varies & (n > 0) & jnp.isfinite(n)
  return jnp.where(defined, c_P / jnp.where(defined, n, 1.0), jnp.nan)
