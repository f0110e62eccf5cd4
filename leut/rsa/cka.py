"""Linear centred kernel alignment (CKA) between two feature sets of the same stimuli (jittable, batched)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from leut.rsa.precision import HIGHEST

__all__ = ["centred_gram", "cka", "cka_from_grams", "hsic_biased", "hsic_unbiased"]


def centred_gram(feats_SxU):
  """Xc Xc' of features centred over stimuli, `...xSxU -> ...xSxS` (HIGHEST precision)."""
  x = jnp.asarray(feats_SxU)
  if not jnp.issubdtype(x.dtype, jnp.floating):
    x = x.astype(jnp.float32)
  x = x - jnp.mean(x, axis=-2, keepdims=True)
  return jnp.einsum("...su,...tu->...st", x, x, precision=HIGHEST)


def hsic_biased(gram_k_SxS, gram_l_SxS):
  """Biased HSIC of two column-centred Gram matrices: tr(K H L H) / (n - 1)^2, `...xSxS -> ...` (Gretton et al. 2005).

  With centred features, H K H = K, so the estimate is sum_ij K_ij L_ij / (n - 1)^2.
  """
  n = gram_k_SxS.shape[-1]
  return jnp.sum(gram_k_SxS * gram_l_SxS, axis=(-2, -1)) / (n - 1) ** 2


def hsic_unbiased(gram_k_SxS, gram_l_SxS):
  """Unbiased HSIC estimator (Song et al. 2012, eq. 5), `...xSxS -> ...`; needs n > 3.

  With K~, L~ the Gram matrices with their diagonals set to 0 and 1 the all-ones vector,
    HSIC_1 = [tr(K~ L~) + (1'K~1)(1'L~1) / ((n-1)(n-2)) - 2/(n-2) 1'K~L~1] / (n(n-3)).
  """
  n = gram_k_SxS.shape[-1]
  eye = jnp.eye(n, dtype=bool)
  k = jnp.where(eye, 0.0, gram_k_SxS)
  l = jnp.where(eye, 0.0, gram_l_SxS)
  trace_kl = jnp.sum(k * l, axis=(-2, -1))
  sum_k, sum_l = jnp.sum(k, axis=(-2, -1)), jnp.sum(l, axis=(-2, -1))
  k_row, l_row = jnp.sum(k, axis=-1), jnp.sum(l, axis=-1)  # K~1, L~1 (symmetric Gram matrices)
  cross = jnp.sum(k_row * l_row, axis=-1)  # 1'K~L~1
  return (trace_kl + sum_k * sum_l / ((n - 1) * (n - 2)) - 2.0 * cross / (n - 2)) / (n * (n - 3))


def _constant(x):
  x = jnp.asarray(x)
  return jnp.all(x == x[..., :1, :], axis=(-2, -1))


def cka(feats_a_SxU: jax.Array, feats_b_SxV: jax.Array, debiased: bool = False) -> jax.Array:
  """Linear CKA between two representations of the same S stimuli, `...xSxU, ...xSxV -> ...` (leading axes
  broadcast, e.g. seeds x layers against one brain region).

    CKA(X, Y) = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L)),   K = Xc Xc',  L = Yc Yc',

  with Xc, Yc the features centred over stimuli (Kornblith et al. 2019, ICML, eq. 3-4). ``debiased=False`` uses the
  biased HSIC estimator, which makes CKA = ||Yc'Xc||_F^2 / (||Xc'Xc||_F ||Yc'Yc||_F); ``debiased=True`` uses the
  unbiased estimator of Song et al. (2012) in numerator and denominator, as Kornblith et al.'s released code and
  Nguyen et al. (2021, ICLR) do, which removes the bias towards 1 at few stimuli and many features.

  Linear CKA is 1 for identical features and invariant to orthogonal transforms and isotropic scaling of either
  side. It is undefined (NaN) when either side is constant over stimuli, when any feature is NaN or infinite, and,
  debiased, when an unbiased self-HSIC is not positive (possible at very few stimuli). Every matrix product runs at
  HIGHEST precision (`leut.rsa.precision`). Jittable; vmap or broadcast over seeds.

  Raises:
    ValueError: fewer than 4 stimuli with ``debiased=True`` (the estimator divides by n(n-3)), or different S.
  """
  a, b = jnp.asarray(feats_a_SxU), jnp.asarray(feats_b_SxV)
  n = a.shape[-2]
  if b.shape[-2] != n:
    raise ValueError(f"feats_a has {n} stimuli and feats_b {b.shape[-2]}")
  if debiased and n < 4:
    raise ValueError(f"debiased CKA needs at least 4 stimuli, got {n}")
  lead = jnp.broadcast_shapes(a.shape[:-2], b.shape[:-2])
  k = jnp.broadcast_to(centred_gram(a), lead + (n, n))
  l = jnp.broadcast_to(centred_gram(b), lead + (n, n))
  constant = jnp.broadcast_to(_constant(a), lead) | jnp.broadcast_to(_constant(b), lead)
  return jnp.where(constant, jnp.nan, cka_from_grams(k, l, debiased))


def cka_from_grams(gram_k_SxS, gram_l_SxS, debiased: bool = False):
  """`cka` from the two centred Gram matrices (`centred_gram`), `...xSxS -> ...`: HSIC(K, L) / sqrt(HSIC(K, K)
  HSIC(L, L)) with the biased or unbiased HSIC. NaN where a self-HSIC is not positive or anything is not finite
  (e.g. for Gram matrices computed once and reused across many comparisons)."""
  hsic = hsic_unbiased if debiased else hsic_biased
  kl, kk, ll = hsic(gram_k_SxS, gram_l_SxS), hsic(gram_k_SxS, gram_k_SxS), hsic(gram_l_SxS, gram_l_SxS)
  denom_sq = kk * ll
  value = kl / jnp.sqrt(jnp.where(denom_sq > 0, denom_sq, 1.0))
  undefined = (denom_sq <= 0) | (kk <= 0) | ~jnp.isfinite(denom_sq) | ~jnp.isfinite(kl)
  return jnp.where(undefined, jnp.nan, value)
