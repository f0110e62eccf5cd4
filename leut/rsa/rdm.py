"""Representational dissimilarity matrices from feature matrices (jittable, batched over leading axes)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from leut.rsa.errors import DegenerateFeaturesError, NonFiniteFeaturesError
from leut.rsa.precision import HIGHEST


def constant_rows(feats_SxU: jax.Array) -> jax.Array:
  """Boolean mask `...xS`: True where a stimulus's feature vector is constant (all entries equal).

  A constant row (e.g. an all-zero ReLU response) has zero variance, so its Pearson correlation with any other row is
  0/0. A row holding NaN or ±inf is not constant: it is `non_finite_rows`. Jittable.
  """
  feats_SxU = jnp.asarray(feats_SxU)
  return jnp.all(feats_SxU == feats_SxU[..., :1], axis=-1)


def non_finite_rows(feats_SxU: jax.Array) -> jax.Array:
  """Boolean mask `...xS`: True where a stimulus's feature vector holds a NaN or ±inf (e.g. a diverged network).

  Every distance to such a stimulus is undefined, and `rdm` returns NaN for it. Jittable.
  """
  return ~jnp.all(jnp.isfinite(jnp.asarray(feats_SxU)), axis=-1)


def check_features(feats_SxU, *, name: str) -> None:
  """Host-side check: raise if any stimulus row is non-finite (`NonFiniteFeaturesError`) or constant
  (`DegenerateFeaturesError`), naming `name`.

  Call it before `rdm(..., metric="correlation"|"cosine")` in the evaluation pipeline so that a dead or diverged
  layer is reported instead of silently scored. Leading axes (seeds, layers, ...) are allowed; the message gives the
  total count and which leading indices are affected.
  """
  feats = jnp.asarray(feats_SxU)
  for rows, error in (
    (non_finite_rows(feats), NonFiniteFeaturesError),
    (constant_rows(feats), DegenerateFeaturesError),
  ):
    rows = np.asarray(rows)
    n = int(rows.sum())
    if n:
      detail = ""
      if rows.ndim > 1:
        bad = np.argwhere(rows.reshape(-1, rows.shape[-1]).any(-1)).ravel()
        lead = [tuple(int(i) for i in np.unravel_index(b, rows.shape[:-1])) for b in bad[:5]]
        detail = f"leading indices {lead}{' ...' if len(bad) > 5 else ''}"
      raise error(name, n, rows.shape[-1], detail)


def _unit_rows(x_SxU):
  norm_S = jnp.sqrt(jnp.sum(x_SxU * x_SxU, axis=-1, keepdims=True))
  safe_S = jnp.where(norm_S > 0, norm_S, 1.0)
  zero_or_nan = jnp.where(jnp.isfinite(norm_S), 0.0, jnp.nan)  # a NaN/inf row stays NaN, a zero row maps to 0
  return jnp.where((norm_S > 0) & jnp.isfinite(norm_S), x_SxU / safe_S, zero_or_nan)


def rdm(feats_SxU: jax.Array, metric: str = "correlation") -> jax.Array:
  """RDM between stimulus rows, `...xSxU -> ...xSxS`.

  correlation: d_ij = 1 - r(f_i, f_j), r the Pearson correlation (rows centred by their own mean) — identical to
    `scipy.spatial.distance.pdist(F, "correlation")` (PROTOCOL §3.2).
  cosine: d_ij = 1 - <f_i, f_j> / (|f_i| |f_j|).
  euclidean: d_ij = |f_i - f_j|.

  Constant rows (correlation) / zero rows (cosine) are undefined; by convention they get r = 0, i.e. distance 1 to
  every other stimulus (a dead ReLU response; the control RDMs rely on it). Detect them with `constant_rows` or
  `check_features` (which raises); `leut.evaluate` reports such a seed as NaN with a note. A row with a NaN or ±inf
  feature (`non_finite_rows`) has NaN distances to every other stimulus, whatever the metric; the other entries are
  unaffected. The diagonal is exactly 0.

  Example: `rdm(jnp.ones((4, 10, 32)) + noise)` -> shape (4, 10, 10).
  """
  x = jnp.asarray(feats_SxU)
  if not jnp.issubdtype(x.dtype, jnp.floating):
    x = x.astype(jnp.float32)
  S = x.shape[-2]
  eye_SxS = jnp.eye(S, dtype=bool)
  if metric in ("correlation", "cosine"):
    if metric == "correlation":
      x = x - jnp.mean(x, axis=-1, keepdims=True)
    z = _unit_rows(x)
    sim = jnp.einsum("...su,...tu->...st", z, z, precision=HIGHEST)
    d = 1.0 - sim
  elif metric == "euclidean":
    # Centre the columns first: distances are translation invariant and the Gram trick loses less precision. The
    # column means skip non-finite rows, so that a NaN row does not spread to the distances between finite rows.
    finite_Sx1 = jnp.all(jnp.isfinite(x), axis=-1, keepdims=True)
    n_finite = jnp.maximum(jnp.sum(finite_Sx1, axis=-2, keepdims=True), 1)
    x = x - jnp.sum(jnp.where(finite_Sx1, x, 0.0), axis=-2, keepdims=True) / n_finite
    sq_S = jnp.sum(x * x, axis=-1)
    gram = jnp.einsum("...su,...tu->...st", x, x, precision=HIGHEST)
    d2 = sq_S[..., :, None] + sq_S[..., None, :] - 2.0 * gram
    d = jnp.sqrt(jnp.maximum(d2, 0.0))
  else:
    raise ValueError(f"unknown metric {metric!r}")
  bad_S = non_finite_rows(jnp.asarray(feats_SxU))
  d = jnp.where(bad_S[..., :, None] | bad_S[..., None, :], jnp.nan, d)
  return jnp.where(eye_SxS, jnp.zeros((), d.dtype), d)


def upper_tri(rdm_SxS: jax.Array) -> jax.Array:
  """Strict upper triangle `...xSxS -> ...xP`, P = S(S-1)/2, in `np.triu_indices(S, k=1)` order."""
  rdm_SxS = jnp.asarray(rdm_SxS)
  S = rdm_SxS.shape[-1]
  iu, ju = np.triu_indices(S, k=1)
  return rdm_SxS[..., iu, ju]


def squareform(vec_P: jax.Array) -> jax.Array:
  """Inverse of `upper_tri` for symmetric RDMs with zero diagonal: `...xP -> ...xSxS`."""
  vec_P = jnp.asarray(vec_P)
  P = vec_P.shape[-1]
  S = n_stimuli(P)
  iu, ju = np.triu_indices(S, k=1)
  out = jnp.zeros(vec_P.shape[:-1] + (S, S), vec_P.dtype)
  out = out.at[..., iu, ju].set(vec_P)
  return out.at[..., ju, iu].set(vec_P)


def n_stimuli(n_pairs: int) -> int:
  """S such that S(S-1)/2 == n_pairs (raises if there is none)."""
  S = int(round((1 + np.sqrt(1 + 8 * n_pairs)) / 2))
  if S * (S - 1) // 2 != n_pairs:
    raise ValueError(f"{n_pairs} is not a triangular number of pairs")
  return S
