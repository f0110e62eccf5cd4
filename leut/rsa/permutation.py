"""Paired stimulus-label permutation test of RDM comparisons (PROTOCOL §3.7, fixed: paired and +1-corrected)."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from leut.rsa.compare import as_pair_weights, as_vector
from leut.rsa.precision import HIGHEST
from leut.rsa.ranks import centred_unit, rank_average
from leut.rsa.rdm import n_stimuli as stimuli_from_pairs
from leut.rsa.rdm import squareform


class PermutationResult(NamedTuple):
  observed: jax.Array  # ...      statistic on the true labels
  null: jax.Array  # ...xN    statistic under each permutation
  p: jax.Array  # ...      (1 + #extreme) / (1 + N)
  perms: jax.Array  # NxS      the stimulus permutations used (share them to pair other tests)


def permutations(key: jax.Array, n_perm: int, n_stimuli: int) -> jax.Array:
  """`NxS` independent uniform stimulus permutations from a JAX key."""
  keys = jax.random.split(key, n_perm)
  return jax.vmap(lambda k: jax.random.permutation(k, n_stimuli))(keys).astype(jnp.int32)


def p_value(observed, null_N, alternative: str = "two-sided") -> jax.Array:
  """p = (1 + #{null as or more extreme than observed}) / (1 + N); last axis of `null_N` = permutations.

  Undefined null statistics (NaN: a permutation whose statistic is undefined) are left out of the count and of N;
  p is NaN when the observed statistic is not finite or no null statistic is defined.
  """
  obs = jnp.asarray(observed)[..., None]
  null_N = jnp.asarray(null_N)
  defined_N = jnp.isfinite(null_N)
  if alternative == "two-sided":
    ext = jnp.abs(null_N) >= jnp.abs(obs)
  elif alternative == "greater":
    ext = null_N >= obs
  elif alternative == "less":
    ext = null_N <= obs
  else:
    raise ValueError(f"unknown alternative {alternative!r}")
  n_defined = jnp.sum(defined_N, axis=-1)
  p = (1.0 + jnp.sum(ext & defined_N, axis=-1)) / (1.0 + n_defined)
  return jnp.where(jnp.isfinite(obs[..., 0]) & (n_defined > 0), p, jnp.nan)


def _z_square(vec_P, w_P, method):
  v = rank_average(vec_P, w_P) if method == "spearman" else vec_P
  return squareform(centred_unit(v, w_P))


def permutation_test(
  model_a,
  brain,
  model_b=None,
  *,
  key: jax.Array | None = None,
  perms_NxS=None,
  n_perm: int = 1000,
  method: str = "spearman",
  pair_mask=None,
  alternative: str = "two-sided",
  batch_size: int = 64,
) -> PermutationResult:
  """Stimulus-label permutation test of score(A, brain) or of the paired difference score(A) - score(B).

  Null: the brain RDM's rows and columns are permuted together, brain_pi[a, b] = brain[pi(a), pi(b)], and the SAME pi
  is used for A and B (paired; the published A v2 test drew two independent permutations of the pair vector). The
  model RDMs stay fixed, so for Spearman they are ranked once; without `pair_mask` the brain's ranks are permuted
  too (ranks are label invariant), so each permutation is a gather plus dot products. With a `pair_mask` the kept pairs
  are fixed in stimulus space, and the permuted brain is re-ranked on them in each permutation.
  p = (1 + #{|null| >= |obs|}) / (1 + N) (two-sided; "greater"/"less" one-sided; Phipson & Smyth 2010 for the +1).
  Undefined scores (a constant model or brain, NaN/inf input, fewer than two kept pairs; see `compare`) give
  observed = NaN and p = NaN; the products run at full float32 on every backend (`leut.rsa.precision`).
  Condition-label randomisation as in Kriegeskorte et al. (2008) and Nili et al. (2014).

  Args:
    model_a, model_b: `...xSxS` (or `...xP`) model RDMs; leading axes broadcast.
    brain: `SxS` (or `P`) brain RDM.
    key / perms_NxS: permutations are `perms_NxS` if given, else `permutations(key, n_perm, S)`.
    method: "spearman" or "pearson".
  Returns:
    PermutationResult(observed, null `...xN`, p, perms `NxS`).
  """
  if method not in ("spearman", "pearson"):
    raise ValueError("permutation_test supports spearman and pearson")
  va = as_vector(model_a)
  vb = None if model_b is None else as_vector(model_b)
  vbr = as_vector(brain)
  P = vbr.shape[-1]
  S = stimuli_from_pairs(P)
  if perms_NxS is None:
    if key is None:
      raise ValueError("give either key or perms_NxS")
    perms_NxS = permutations(key, n_perm, S)
  perms_NxS = jnp.asarray(perms_NxS, jnp.int32)
  w_P = as_pair_weights(pair_mask, P)
  return _permutation_jit(va, vb, vbr, perms_NxS, w_P, method=method, alternative=alternative, batch_size=batch_size)


def _permutation_core(va, vb, vbr, perms_NxS, w_P, *, method, alternative, batch_size):
  S = perms_NxS.shape[-1]
  iu, ju = np.triu_indices(S, k=1)
  za = centred_unit(rank_average(va, w_P) if method == "spearman" else va, w_P)
  if vb is not None:
    zb = centred_unit(rank_average(vb, w_P) if method == "spearman" else vb, w_P)
    shape = jnp.broadcast_shapes(za.shape, zb.shape)
    zd = jnp.broadcast_to(za, shape) - jnp.broadcast_to(zb, shape)
  else:
    zd = za
  lead = zd.shape[:-1]
  zd_KxP = zd.reshape(-1, zd.shape[-1])
  if w_P is None:
    zbr_SxS = _z_square(vbr, None, method)

    def one(perm_S):
      return jnp.matmul(zd_KxP, zbr_SxS[perm_S[iu], perm_S[ju]], precision=HIGHEST)
  else:
    br_SxS = squareform(vbr)

    def one(perm_S):
      v = br_SxS[perm_S[iu], perm_S[ju]]
      z = centred_unit(rank_average(v, w_P) if method == "spearman" else v, w_P)
      return jnp.matmul(zd_KxP, z, precision=HIGHEST)

  observed = one(jnp.arange(S, dtype=jnp.int32))
  null_NxK = jax.lax.map(one, perms_NxS, batch_size=batch_size)
  null = jnp.moveaxis(null_NxK, 0, -1).reshape(lead + (perms_NxS.shape[0],))
  observed = observed.reshape(lead)
  return PermutationResult(observed, null, p_value(observed, null, alternative), perms_NxS)


_permutation_jit = jax.jit(_permutation_core, static_argnames=("method", "alternative", "batch_size"))
