"""Nili et al. (2014) noise ceiling over subjects (PROTOCOL §3.5, A v4 / C v3)."""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from leut.rsa.compare import as_vector, compare
from leut.rsa.permutation import p_value
from leut.rsa.rdm import squareform


class NoiseCeiling(NamedTuple):
  lower: jax.Array  # mean_j score(RDM_j, mean of the other subjects)
  upper: jax.Array  # mean_j score(RDM_j, mean of all subjects)
  lower_J: jax.Array  # per-subject leave-one-out scores
  upper_J: jax.Array  # per-subject all-subject scores
  null_lower: jax.Array | None  # N lower bounds under independent per-subject stimulus relabelling
  p_lower: jax.Array | None  # (1 + #{null >= lower}) / (1 + N)


def _bounds(v_JxP, method, pair_mask):
  J = v_JxP.shape[0]
  total_P = jnp.sum(v_JxP, axis=0)
  others_JxP = (total_P[None, :] - v_JxP) / (J - 1)
  mean_P = total_P / J
  lower_J = compare(v_JxP, others_JxP, method, pair_mask=pair_mask, square=False)
  upper_J = compare(v_JxP, mean_P, method, pair_mask=pair_mask, square=False)
  return lower_J, upper_J


def noise_ceiling(
  subject_rdms_JxSxS,
  method: str = "spearman",
  *,
  pair_mask=None,
  key: jax.Array | None = None,
  n_perm: int = 0,
  batch_size: int = 16,
) -> NoiseCeiling:
  """Leave-one-subject-out lower bound and all-subject upper bound of the group-RDM score (Nili et al. 2014).

  lower = (1/J) sum_j score(RDM_j, mean_{k != j} RDM_k);  upper = (1/J) sum_j score(RDM_j, mean_k RDM_k).
  No Spearman-Brown correction (A v4); the upper bound is optimistic at small J (it contains RDM_j itself).
  With `n_perm > 0` (and `key`), a null for the lower bound: every subject's stimuli are relabelled by an
  independent permutation (rows and columns together), destroying shared structure; p = (1 + #{null >= lower})/(1+N).
  `subject_rdms_JxSxS` may also be `JxP`. A subject RDM with a NaN/inf entry, or one constant on the kept pairs,
  makes the bounds NaN (and p_lower NaN); fewer than 2 subjects raise.
  """
  v_JxP = as_vector(subject_rdms_JxSxS).astype(jnp.float32)
  if v_JxP.shape[0] < 2:
    raise ValueError("the noise ceiling needs at least 2 subjects")
  if n_perm and key is None:
    raise ValueError("n_perm > 0 needs a key")
  return _noise_ceiling(v_JxP, pair_mask, key if n_perm else None, method=method, n_perm=n_perm, batch_size=batch_size)


# One compiled program per shape and setting: called op by op, the permutation null's `lax.map` compiled anew at
# every call (its body is a fresh closure each time).
@functools.partial(jax.jit, static_argnames=("method", "n_perm", "batch_size"))
def _noise_ceiling(v_JxP, pair_mask, key, *, method: str, n_perm: int, batch_size: int) -> NoiseCeiling:
  J, P = v_JxP.shape
  lower_J, upper_J = _bounds(v_JxP, method, pair_mask)
  lower = jnp.mean(lower_J)
  null = p = None
  if n_perm:
    S = int(round((1 + np.sqrt(1 + 8 * P)) / 2))
    iu, ju = np.triu_indices(S, k=1)
    sq_JxSxS = squareform(v_JxP)
    keys = jax.random.split(key, n_perm)

    def one(k):
      perms_JxS = jax.vmap(lambda kk: jax.random.permutation(kk, S))(jax.random.split(k, J))
      pv_JxP = jax.vmap(lambda m, pi: m[pi[iu], pi[ju]])(sq_JxSxS, perms_JxS)
      return jnp.mean(_bounds(pv_JxP, method, pair_mask)[0])

    null = jax.lax.map(one, keys, batch_size=batch_size)
    p = p_value(lower, null, "greater")
  return NoiseCeiling(lower, jnp.mean(upper_J), lower_J, upper_J, null, p)
