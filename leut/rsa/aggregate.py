"""Subject aggregation schemes (PROTOCOL §3.3): mean-RDM score vs mean of per-subject scores.

Undefined comparisons are NaN as in `compare`; a NaN per-subject score makes the mean NaN (no subject is dropped).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from leut.rsa.compare import as_vector, compare


def mean_rdm_score(model_rdm, subject_rdms_JxSxS, method: str = "spearman", *, pair_mask=None) -> jax.Array:
  """`rho` scheme: score(model, mean_j RDM_j) — element-wise mean of the J subject RDMs, then one comparison.

  Used in papers A v1/v2 (PROTOCOL §3.3); uniformly higher than `mean_subject_score`. `model_rdm` may carry leading
  axes (`...xSxS` or `...xP`); `subject_rdms` is `JxSxS` or `JxP`. Returns `...`.
  """
  mean_P = jnp.mean(as_vector(subject_rdms_JxSxS), axis=0)
  return compare(as_vector(model_rdm), mean_P, method, pair_mask=pair_mask, square=False)


def mean_subject_score(
  model_rdm, subject_rdms_JxSxS, method: str = "spearman", *, pair_mask=None, return_per_subject: bool = False
):
  """`rho_sub_mean` scheme: (1/J) sum_j score(model, RDM_j) (PROTOCOL §3.3; papers B, C v3, A v4).

  Returns `...` (and the per-subject `...xJ` scores if `return_per_subject`).
  """
  vm = as_vector(model_rdm)
  vs_JxP = as_vector(subject_rdms_JxSxS)
  per_J = compare(vm[..., None, :], vs_JxP, method, pair_mask=pair_mask, square=False)
  mean = jnp.mean(per_J, axis=-1)
  return (mean, per_J) if return_per_subject else mean
