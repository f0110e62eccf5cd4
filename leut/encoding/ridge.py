"""Ridge regression with the penalty chosen per target by exact leave-one-out error, from one SVD of the features."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from leut.rsa.precision import HIGHEST

__all__ = ["RidgeFit", "ridge_loo_fit"]


class RidgeFit(NamedTuple):
  pred_SxT: jax.Array  # predictions for every stimulus (train rows: in-sample; the others: held out)
  best_T: jax.Array  # index into the lambda grid chosen for each target
  loo_mse_LxT: jax.Array  # leave-one-out mean squared error on the training rows, per lambda and target


def ridge_loo_fit(
  feats_SxU: jax.Array, targets_SxT: jax.Array, train_S: jax.Array, lambdas_L: jax.Array, *, lambda_batch=None
) -> RidgeFit:
  """Fits ridge regressions with an unpenalised intercept on the training rows and predicts every row.

  For each target t and penalty lambda, on the n training rows with centred features Xc = U diag(s) W' (thin SVD)
  and centred target yc, the fit is yc_hat = U diag(g) U' yc with g = s^2 / (s^2 + lambda), the hat matrix is
  H = 11'/n + U diag(g) U', and the exact leave-one-out residual is e_i = (yc_i - yc_hat_i) / (1 - H_ii), both
  terms computed as sums over the singular directions of (1 - g) = lambda / (s^2 + lambda)
  (Allen 1974; Golub, Heath & Wahba 1979). Each target gets the lambda of least mean e_i^2 (the first on ties),
  and predictions x -> (x - mean) W diag(s / (s^2 + lambda_t)) U' yc + mean(y). This is scikit-learn's
  ``RidgeCV(alphas, alpha_per_target=True)`` (its efficient leave-one-out), done with one SVD that serves every
  lambda and every target. Features are centred, not scaled, so lambda is in the units of Xc'Xc.

  Test rows enter as zero rows (``train_S`` False), so every split has the same shapes and folds vmap. Every matrix
  product runs at HIGHEST precision; the SVD is ``jnp.linalg.svd``. A non-finite target gives NaN for that target.

  Args:
    feats_SxU: features of every stimulus.
    targets_SxT: responses of T targets (neurons, voxels).
    train_S: bool, the rows to fit on.
    lambdas_L: penalties, all > 0.
    lambda_batch: penalties evaluated at a time (None: all at once, in one vmap); bounds memory at L x S x T.
  """
  x = jnp.asarray(feats_SxU, jnp.float32)
  y = jnp.asarray(targets_SxT, jnp.float32)
  w_S = jnp.asarray(train_S, jnp.float32)
  n = jnp.sum(w_S)
  x_mean = jnp.einsum("s,su->u", w_S, x, precision=HIGHEST) / n
  y_mean = jnp.einsum("s,st->t", w_S, y, precision=HIGHEST) / n
  xc = (x - x_mean[None, :]) * w_S[:, None]
  yc = (y - y_mean[None, :]) * w_S[:, None]
  u_SxR, s_R, vh_RxU = jnp.linalg.svd(xc, full_matrices=False)
  # Directions with a singular value at rounding level carry no signal (g = 0); when the kept ones span the
  # centred training rows (rank n - 1), the out-of-span residual and leverage are exactly 0, and are set so:
  # otherwise computing 1 - H_ii and yc - yc_hat by subtraction loses the digits that matter at small lambda.
  tol = jnp.max(s_R) * max(x.shape) * jnp.finfo(jnp.float32).eps
  keep_R = s_R > tol
  full = jnp.sum(keep_R) >= n - 1
  p_RxT = jnp.where(keep_R[:, None], jnp.einsum("sr,st->rt", u_SxR, yc, precision=HIGHEST), 0.0)
  u2_SxR = u_SxR * u_SxR
  out_yc = jnp.where(full, 0.0, yc - jnp.einsum("sr,rt->st", u_SxR, p_RxT, precision=HIGHEST))
  in_span_S = jnp.einsum("sr,r->s", u2_SxR, keep_R.astype(x.dtype), precision=HIGHEST)
  out_h_S = jnp.where(full, 0.0, 1.0 - 1.0 / n - in_span_S)

  def loo_mse(lam):
    c_R = jnp.where(keep_R, lam / (s_R**2 + lam), 0.0)  # 1 - g on the kept directions
    resid = out_yc + jnp.einsum("sr,rt->st", u_SxR, c_R[:, None] * p_RxT, precision=HIGHEST)
    one_minus_h = out_h_S + jnp.einsum("sr,r->s", u2_SxR, c_R, precision=HIGHEST)
    e = resid / jnp.where(w_S > 0, one_minus_h, 1.0)[:, None]
    return jnp.sum(w_S[:, None] * e * e, axis=0) / n

  lambdas_L = jnp.asarray(lambdas_L, jnp.float32)
  mse_LxT = jax.lax.map(loo_mse, lambdas_L, batch_size=lambda_batch)
  best_T = jnp.argmin(jnp.where(jnp.isnan(mse_LxT), jnp.inf, mse_LxT), axis=0)
  lam_T = lambdas_L[best_T]
  d_RxT = jnp.where(keep_R[:, None], s_R[:, None] / (s_R[:, None] ** 2 + lam_T[None, :]), 0.0)
  z_SxR = jnp.einsum("su,ru->sr", x - x_mean[None, :], vh_RxU, precision=HIGHEST)
  pred = jnp.einsum("sr,rt->st", z_SxR, d_RxT * p_RxT, precision=HIGHEST) + y_mean[None, :]
  nan_T = jnp.any(~jnp.isfinite(y), axis=0)
  pred = jnp.where(nan_T[None, :], jnp.nan, pred)
  return RidgeFit(pred, best_T, mse_LxT)
