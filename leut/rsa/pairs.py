"""Stimulus-pair restrictions: cross-run mask and run-pair block cleaning (PROTOCOL §3.4)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from leut.rsa.precision import HIGHEST
from leut.rsa.rdm import upper_tri


def cross_run_mask(runs_JxS) -> jax.Array:
  """Boolean `SxS` mask: keep pair (a, b) only if run_j(a) != run_j(b) for every subject j (PROTOCOL §3.4).

  `runs_JxS` holds each subject's run label per stimulus (a single subject may be given as `S`). The diagonal is
  False. On THINGS-fMRI this keeps 210,205 of 258,840 pairs. Jittable.
  """
  runs = jnp.asarray(runs_JxS)
  if runs.ndim == 1:
    runs = runs[None, :]
  differ_JxSxS = runs[:, :, None] != runs[:, None, :]
  return jnp.all(differ_JxSxS, axis=0)


def run_block_ids(runs_S) -> np.ndarray:
  """Host-side: id `P` of the unordered run pair {run(a), run(b)} of every upper-triangle pair."""
  _, lab_S = np.unique(np.asarray(runs_S), return_inverse=True)
  n = int(lab_S.max()) + 1
  iu, ju = np.triu_indices(len(lab_S), k=1)
  lo = np.minimum(lab_S[iu], lab_S[ju])
  hi = np.maximum(lab_S[iu], lab_S[ju])
  return lo * n + hi


def block_clean(vec_P, runs_S, *, pair_mask=None) -> jax.Array:
  """Subtract from every pair the mean of its unordered run-pair block (robustness variant of PROTOCOL §3.4).

  v'_p = v_p - mean{v_q : block(q) = block(p), q kept}, with block(p) = {run(a), run(b)} of pair p = (a, b) for one
  subject's run labels `runs_S`. Apply it to both the subject RDM vector and the model vector, then compare on the same
  pairs. `vec_P` is `...xP` or `...xSxS` (returned as `...xP`); `pair_mask` (SxS or P) excludes pairs from the block
  means (e.g. same-run pairs). Run labels are host data (the block ids are built with NumPy).
  A NaN/inf kept pair makes its whole block NaN (its mean is undefined); other blocks are unaffected.
  """
  v = jnp.asarray(vec_P)
  S = len(np.asarray(runs_S))
  if v.ndim >= 2 and v.shape[-1] == v.shape[-2] == S:
    v = upper_tri(v)
  ids_P = run_block_ids(runs_S)
  n_blocks = int(ids_P.max()) + 1
  if pair_mask is None:
    w_P = jnp.ones(ids_P.shape, jnp.float32)
  else:
    m = jnp.asarray(pair_mask)
    w_P = (upper_tri(m) if m.ndim == 2 else m).astype(jnp.float32)
  onehot_PxK = jax.nn.one_hot(jnp.asarray(ids_P), n_blocks, dtype=jnp.float32) * w_P[:, None]
  counts_K = jnp.sum(onehot_PxK, axis=0)
  v = v.astype(jnp.float32)
  finite = jnp.isfinite(v)
  sums_K = jnp.einsum("...p,pk->...k", jnp.where(finite, v, 0.0), onehot_PxK, precision=HIGHEST)
  n_bad_K = jnp.einsum("...p,pk->...k", (~finite).astype(jnp.float32), onehot_PxK, precision=HIGHEST)
  means_K = jnp.where(n_bad_K > 0, jnp.nan, sums_K / jnp.maximum(counts_K, 1.0))
  return v - means_K[..., jnp.asarray(ids_P)]
