"""Partial RSA: Spearman correlation after regressing control-RDM ranks out of both RDMs (PROTOCOL §3.10)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from leut.rsa.compare import _align, as_pair_weights, as_vector, compare
from leut.rsa.ranks import rank_average


def rank_residuals(vec_P, controls_KxP, weights_P=None) -> jax.Array:
  """Residuals of rank(vec) after least squares on [1, rank(control_1), ..., rank(control_K)].

  `vec_P` is `...xP`; `controls_KxP` is `KxP` (or `P` for one control). Ranks and the regression use only pairs with
  weight > 0 (a pair mask). For K = 1 this equals the published `residualize`
  (beta = <r_a, r_z - mean> / |r_z - mean|^2) up to the intercept, which a rank correlation ignores.
  """
  v = jnp.asarray(vec_P)
  c = jnp.asarray(controls_KxP)
  if c.ndim == 1:
    c = c[None, :]
  P = v.shape[-1]
  w_P = jnp.ones((P,), jnp.float32) if weights_P is None else jnp.asarray(weights_P, jnp.float32)
  rv = rank_average(v, w_P)
  rc_KxP = rank_average(c, w_P)
  n = jnp.sum(w_P)

  def centre(x):
    w = jnp.broadcast_to(w_P, x.shape)
    return (x - (jnp.sum(x * w, axis=-1, keepdims=True) / n)) * w

  xc_KxP = centre(rc_KxP)
  scale_K = jnp.sqrt(jnp.sum(xc_KxP * xc_KxP, axis=-1, keepdims=True))
  xs_KxP = xc_KxP / jnp.where(scale_K > 0, scale_K, 1.0)
  gram_KxK = xs_KxP @ xs_KxP.T
  K = gram_KxK.shape[0]
  yc = centre(rv)
  rhs_K = jnp.einsum("kp,...p->...k", xs_KxP, yc, precision=jax.lax.Precision.HIGHEST)
  # Tiny ridge keeps duplicated controls solvable; unit-norm columns make 1e-6 negligible otherwise.
  beta_K = jnp.linalg.solve(gram_KxK + 1e-6 * jnp.eye(K, dtype=gram_KxK.dtype), rhs_K.reshape(-1, K).T).T.reshape(
    rhs_K.shape
  )
  fit = jnp.einsum("...k,kp->...p", beta_K, xs_KxP, precision=jax.lax.Precision.HIGHEST)
  return yc - fit


def partial_compare(model, brain, controls, *, pair_mask=None) -> jax.Array:
  """Partial Spearman rho(model, brain | controls), batched over leading axes of model and brain.

  Rank model, brain and each control RDM; regress the control ranks (plus intercept, least squares) out of the model
  ranks and out of the brain ranks; return the Spearman correlation of the two residual vectors (they are re-ranked,
  as in the published pipeline). PROTOCOL §3.10; controls from `leut.rsa.controls` (§3.11).
  rho_partial = spearman(e_model, e_brain), e_x = rank(x) - Z beta_x, Z = [1, rank(c_1), ..., rank(c_K)],
  beta_x = argmin |rank(x) - Z beta|^2.

  Args:
    model, brain: `...xSxS` or `...xP`.
    controls: `KxSxS`, `KxP`, `SxS` or `P` control RDM(s).
    pair_mask: SxS or P boolean, restricts ranking, regression and correlation to the kept pairs.
  """
  vm = as_vector(model)
  vb = as_vector(brain)
  vc = jnp.asarray(controls)
  if vc.ndim >= 2 and vc.shape[-1] == vc.shape[-2]:
    vc = as_vector(vc)
  P = vm.shape[-1]
  w_P = as_pair_weights(pair_mask, P)
  em = rank_residuals(vm, vc, w_P)
  eb = rank_residuals(vb, vc, w_P)
  em, eb = _align(em, eb)
  return compare(em, eb, "spearman", pair_mask=w_P, square=False)
