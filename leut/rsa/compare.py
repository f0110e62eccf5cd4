"""Comparison of RDMs: Spearman, Pearson, Kendall tau-a and rho-a on upper triangles, batched over leading axes."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from leut.rsa.ranks import centred_unit, rank_average
from leut.rsa.rdm import upper_tri

METHODS = ("spearman", "pearson", "kendall_tau_a", "rho_a")


def as_vector(x, square: bool | None = None) -> jax.Array:
  """`...xSxS` RDM -> `...xP` upper triangle; `...xP` vectors pass through.

  `square=None` infers: an array whose last two axes are equal is a square RDM (the only ambiguous shape is
  3 vectors of P=3 pairs; pass `square=False` for that).
  """
  x = jnp.asarray(x)
  if square is None:
    square = x.ndim >= 2 and x.shape[-1] == x.shape[-2]
  return upper_tri(x) if square else x


def as_pair_weights(pair_mask, n_pairs: int):
  """Boolean SxS or P mask -> float32 `P` weights (or None)."""
  if pair_mask is None:
    return None
  m = jnp.asarray(pair_mask)
  if m.ndim == 2 and m.shape[-1] == m.shape[-2] and m.shape[-1] * (m.shape[-1] - 1) // 2 == n_pairs:
    m = upper_tri(m)
  if m.shape[-1] != n_pairs:
    raise ValueError(f"pair_mask has {m.shape[-1]} pairs, RDMs have {n_pairs}")
  return m.astype(jnp.float32)


def _align(a, b):
  """Prepend unit axes so a and b have the same rank (explicit numpy-style broadcasting)."""
  nd = max(a.ndim, b.ndim)
  return a.reshape((1,) * (nd - a.ndim) + a.shape), b.reshape((1,) * (nd - b.ndim) + b.shape)


def compare(a, b, method: str = "spearman", *, pair_mask=None, square: bool | None = None) -> jax.Array:
  """Compare RDMs `a` and `b` (square `...xSxS` or vectors `...xP`), broadcasting over leading axes.

  spearman: Pearson correlation of average ranks (ties averaged, = `scipy.stats.spearmanr`; PROTOCOL §3.2).
    Each input is ranked once, then rho = <z_a, z_b> with z the centred unit-norm rank vectors.
  pearson: Pearson r of the raw dissimilarities.
  rho_a: the expected Spearman rho under random tie breaking (Nili et al. 2014, as `rsatoolbox.rdm.compare_rho_a`):
    rho_a = 12 sum_p (r_a,p - rbar)(r_b,p - rbar) / (n^3 - n), r average ranks, rbar = (n + 1) / 2, n kept pairs.
    Without ties it equals Spearman's rho; with ties it is smaller than Spearman's (no tie correction in the
    denominator), e.g. a two-category model scores below its Spearman rho.
  kendall_tau_a: (n_concordant - n_discordant) / (n(n-1)/2), ties count 0 (Nili et al. 2014). Exact O(P^2) in
    blocks, meant for small S (P up to a few tens of thousands).

  `pair_mask` (boolean SxS or P) restricts everything, ranking included, to the kept pairs.
  Undefined comparisons are NaN for every method (the kernel is jitted, so it returns NaN rather than raising):
  fewer than two kept pairs (an empty mask, a single pair, two stimuli), a constant vector on the kept pairs (for
  rho_a and tau-a too, whose formulas would give 0: a constant RDM orders nothing), or a NaN/inf kept entry.

  Example: `compare(model_rdms_MxSxS[:, None], subject_rdms_JxSxS[None])` -> MxJ Spearman rhos.
  """
  va = as_vector(a, square)
  vb = as_vector(b, square)
  if va.shape[-1] != vb.shape[-1]:
    raise ValueError(f"pair counts differ: {va.shape[-1]} vs {vb.shape[-1]}")
  if method not in METHODS:
    raise ValueError(f"unknown method {method!r}; expected one of {METHODS}")
  return _compare_vectors(va, vb, as_pair_weights(pair_mask, va.shape[-1]), method)


@functools.partial(jax.jit, static_argnames="method")
def _compare_vectors(va, vb, w_P, method):
  if method == "pearson":
    za, zb = _align(centred_unit(va, w_P), centred_unit(vb, w_P))
    return jnp.sum(za * zb, axis=-1)
  if method == "spearman":
    za = centred_unit(rank_average(va, w_P), w_P)
    zb = centred_unit(rank_average(vb, w_P), w_P)
    za, zb = _align(za, zb)
    return jnp.sum(za * zb, axis=-1)
  if method == "rho_a":
    ra, rb = _align(_centred_ranks(va, w_P), _centred_ranks(vb, w_P))
    n = jnp.asarray(va.shape[-1], jnp.float32) if w_P is None else jnp.sum(w_P)
    return 12.0 * jnp.sum(ra * rb, axis=-1) / (n**3 - n)
  if method == "kendall_tau_a":
    va, vb = _align(va, vb)
    shape = jnp.broadcast_shapes(va.shape, vb.shape)
    fa = jnp.broadcast_to(va, shape).reshape(-1, shape[-1])
    fb = jnp.broadcast_to(vb, shape).reshape(-1, shape[-1])
    w = jnp.ones(shape[-1], jnp.float32) if w_P is None else w_P
    tau = jax.vmap(lambda x, y: _tau_a(x, y, w))(fa, fb).reshape(shape[:-1])
    return jnp.where(_undefined(va, w_P) | _undefined(vb, w_P), jnp.nan, tau)
  raise AssertionError(method)


def _undefined(v_P, w_P):
  """`...`: fewer than two kept entries, all kept entries equal, or a non-finite kept entry (see `compare`)."""
  return jnp.isnan(centred_unit(v_P, w_P)[..., 0])


def _centred_ranks(v_P, w_P):
  """r_p - (n + 1) / 2 on the kept pairs (0/1 weights; 0 elsewhere), r the average ranks among the kept pairs, n
  their count; NaN rows where `_undefined`."""
  r = rank_average(v_P, w_P)
  if w_P is None:
    c = r - 0.5 * (v_P.shape[-1] + 1.0)
  else:
    c = jnp.where(jnp.broadcast_to(w_P, r.shape) > 0, r - 0.5 * (jnp.sum(w_P) + 1.0), 0.0)
  return jnp.where(_undefined(v_P, w_P)[..., None], jnp.nan, c)


def _tau_a(x_P, y_P, w_P, block: int = 256):
  P = x_P.shape[-1]
  x_P, y_P = jnp.where(w_P > 0, x_P, 0.0), jnp.where(w_P > 0, y_P, 0.0)
  nb = -(-P // block)
  pad = nb * block - P
  xi = jnp.pad(x_P, (0, pad)).reshape(nb, block)
  yi = jnp.pad(y_P, (0, pad)).reshape(nb, block)
  wi = jnp.pad(w_P, (0, pad)).reshape(nb, block)

  def one(args):  # entries of weight 0 are zeroed first: their values (even NaN) must not reach the sum
    xb, yb, wb = args
    sx = jnp.sign(xb[:, None] - x_P[None, :])
    sy = jnp.sign(yb[:, None] - y_P[None, :])
    return jnp.sum(wb[:, None] * w_P[None, :] * sx * sy)

  total = jnp.sum(jax.lax.map(one, (xi, yi, wi)))
  n = jnp.sum(w_P)
  return total / (n * (n - 1.0))
