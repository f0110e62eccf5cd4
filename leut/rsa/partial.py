"""Partial RSA: rank correlation of two RDMs with control-RDM ranks regressed out of both (PROTOCOL §3.10).

Two estimators, both built on the same rank residuals e_x = rank(x) - Z beta_x, Z = [1, rank(c_1), ..., rank(c_K)]:

  partial_compare   the published estimator: the residuals are RE-RANKED and correlated (Spearman of e_model and
                    e_brain). It is what the published pipeline computed, so leut's headline partial RSA uses it.
  partial_spearman  the textbook partial Spearman correlation: the Pearson correlation of the rank residuals, no
                    re-ranking, i.e. the partial correlation r_xy.z computed from the Spearman correlation matrix
                    (for one control (r_xy - r_xz r_yz) / sqrt((1 - r_xz^2)(1 - r_yz^2)); Kendall & Stuart, The
                    Advanced Theory of Statistics, vol. 2, ch. 27; Conover 1999, Practical Nonparametric Statistics).

The two agree closely when the residuals are near-normal and can differ by a few hundredths otherwise.
Residuals come from a Gram–Schmidt orthogonalisation of the centred control ranks written with element-wise
products and sums, so no matrix product or linear solve can be lowered to TF32/bfloat16 (`leut.rsa.precision`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from leut.rsa.compare import _align, as_pair_weights, as_vector, compare
from leut.rsa.ranks import rank_average

# A control whose part orthogonal to the earlier controls has a norm below this (relative to its own norm) is
# explained by them to R^2 > 1 - 1e-6 and adds nothing to the fit (e.g. a control given twice). Likewise a vector
# whose residual norm is below this fraction of its centred norm is explained by the controls (up to float32
# rounding): its residuals are set to 0, so its partial correlation is undefined (NaN), not a correlation of noise.
DEPENDENT_CONTROL_NORM = 1e-3


def _dot(a, b):
  """Element-wise product summed over the last axis (not a matrix product), `b` broadcast to `a`."""
  return jnp.sum(a * jnp.broadcast_to(b, a.shape), axis=-1, keepdims=True)


def _remove(x, basis):
  """x minus its projections on the orthonormal `basis` vectors, twice ("twice is enough", Giraud et al. 2005)."""
  for _ in range(2):
    for b in basis:
      x = x - _dot(x, b) * jnp.broadcast_to(b, x.shape)
  return x


def rank_residuals(vec_P, controls_KxP, weights_P=None) -> jax.Array:
  """Residuals of rank(vec) after least squares on [1, rank(control_1), ..., rank(control_K)], zero off the mask.

  `vec_P` is `...xP`; `controls_KxP` is `KxP` (or `P` for one control). Ranks and the regression use only pairs with
  weight > 0 (a pair mask). For K = 1 this equals the published `residualize`
  (beta = <r_a, r_z - mean> / |r_z - mean|^2) up to the intercept, which a rank correlation ignores.
  The fit projects onto an orthonormal basis of the centred control ranks (modified Gram–Schmidt, applied twice for
  float32 accuracy); a control that is constant or explained by the earlier ones adds nothing, and a vector the
  controls explain entirely (`DEPENDENT_CONTROL_NORM`) has residuals 0 (so its partial correlation is NaN).
  A NaN or ±inf kept entry in `vec_P` or in a control makes the residuals NaN.
  """
  v = jnp.asarray(vec_P)
  c = jnp.asarray(controls_KxP)
  if c.ndim == 1:
    c = c[None, :]
  P = v.shape[-1]
  w_P = jnp.ones((P,), jnp.float32) if weights_P is None else jnp.asarray(weights_P, jnp.float32)
  keep_P = w_P > 0
  n = jnp.sum(w_P)

  def centre(x):
    keep = jnp.broadcast_to(keep_P, x.shape)
    x = jnp.where(keep, x, 0.0)
    return jnp.where(keep, x - _dot(x, w_P) / n, 0.0)

  basis = []
  for k in range(c.shape[0]):
    q = centre(rank_average(c[k], w_P))
    size = jnp.sqrt(_dot(q, q))
    q = _remove(q, basis)
    norm = jnp.sqrt(_dot(q, q))
    independent = jnp.isnan(norm) | (norm > DEPENDENT_CONTROL_NORM * size)  # NaN must reach the result
    basis.append(jnp.where(independent, q / jnp.where(norm > 0, norm, 1.0), 0.0))
  y = centre(rank_average(v, w_P))
  e = _remove(y, basis)
  explained = jnp.sqrt(_dot(e, e)) <= DEPENDENT_CONTROL_NORM * jnp.sqrt(_dot(y, y))
  return jnp.where(explained, 0.0, e)


def partial_compare(model, brain, controls, *, pair_mask=None) -> jax.Array:
  """Partial rank correlation rho(model, brain | controls) as published: Spearman of RE-RANKED rank residuals.

  Rank model, brain and each control RDM; regress the control ranks (plus intercept, least squares) out of the model
  ranks and out of the brain ranks; return the Spearman correlation of the two residual vectors (they are re-ranked,
  as in the published pipeline). PROTOCOL §3.10; controls from `leut.rsa.controls` (§3.11). For the textbook partial
  Spearman correlation (no re-ranking) see `partial_spearman`.
  rho_partial = spearman(e_model, e_brain), e_x = rank(x) - Z beta_x, Z = [1, rank(c_1), ..., rank(c_K)],
  beta_x = argmin |rank(x) - Z beta|^2. Undefined (NaN) as `compare`: e.g. a model explained entirely by the
  controls (constant residuals), NaN/inf input, fewer than two kept pairs.

  Args:
    model, brain: `...xSxS` or `...xP`.
    controls: `KxSxS`, `KxP`, `SxS` or `P` control RDM(s).
    pair_mask: SxS or P boolean, restricts ranking, regression and correlation to the kept pairs.
  """
  em, eb, w_P = _residual_pair(model, brain, controls, pair_mask)
  return compare(em, eb, "spearman", pair_mask=w_P, square=False)


def partial_spearman(model, brain, controls, *, pair_mask=None) -> jax.Array:
  """Textbook partial Spearman correlation: the Pearson correlation of the rank residuals (no re-ranking).

  r_xy.z = pearson(e_x, e_y) with e as in `partial_compare`; equal to the partial correlation computed from the
  Spearman (rank) correlation matrix R of (x, y, z_1..z_K): r_xy.z = -R^-1_xy / sqrt(R^-1_xx R^-1_yy).
  References: Kendall & Stuart, The Advanced Theory of Statistics, vol. 2, ch. 27; Conover (1999), Practical
  Nonparametric Statistics, 3rd ed., §5.4. Same arguments, shapes and undefined cases as `partial_compare`.
  """
  em, eb, w_P = _residual_pair(model, brain, controls, pair_mask)
  return compare(em, eb, "pearson", pair_mask=w_P, square=False)


def _residual_pair(model, brain, controls, pair_mask):
  vm = as_vector(model)
  vb = as_vector(brain)
  vc = jnp.asarray(controls)
  if vc.ndim >= 2 and vc.shape[-1] == vc.shape[-2]:
    vc = as_vector(vc)
  w_P = as_pair_weights(pair_mask, vm.shape[-1])
  em, eb = _align(rank_residuals(vm, vc, w_P), rank_residuals(vb, vc, w_P))
  return em, eb, w_P
