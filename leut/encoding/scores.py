"""Cross-validated encoding scores: held-out Pearson r per target, vmapped over folds and seeds."""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp

from leut.encoding.ridge import ridge_loo_fit

__all__ = ["EncodingScores", "masked_pearson", "fold_scores", "encoding_scores"]


class EncodingScores(NamedTuple):
  r_NxT: jax.Array  # held-out Pearson r per seed and target, mean over folds
  r_NxKxT: jax.Array  # per fold
  best_NxKxT: jax.Array  # index into the lambda grid chosen per seed, fold and target
  pred_NxSxT: jax.Array  # held-out prediction of every stimulus from the fold that holds it out (NaN: none does)


def masked_pearson(pred_SxT: jax.Array, true_SxT: jax.Array, mask_S: jax.Array) -> jax.Array:
  """Pearson r per column over the rows in ``mask_S``: (T,). NaN where either column is constant there."""
  w = jnp.asarray(mask_S, jnp.float32)[:, None]
  n = jnp.sum(w)
  pm = jnp.sum(w * pred_SxT, axis=0) / n
  tm = jnp.sum(w * true_SxT, axis=0) / n
  dp, dt = w * (pred_SxT - pm[None, :]), w * (true_SxT - tm[None, :])
  den = jnp.sqrt(jnp.sum(dp * dp, axis=0) * jnp.sum(dt * dt, axis=0))
  return jnp.where(den > 0, jnp.sum(dp * dt, axis=0) / jnp.where(den > 0, den, 1.0), jnp.nan)


def fold_scores(feats_SxU, targets_SxT, test_KxS, lambdas_L, *, lambda_batch=None):
  """Held-out r and chosen lambda of every fold, (K, T) each, and the held-out predictions (S, T): each stimulus's
  from the fold that holds it out (folds are disjoint), NaN for a stimulus no fold holds out. One vmap over folds."""
  test_KxS = jnp.asarray(test_KxS, bool)

  def one(test_S):
    fit = ridge_loo_fit(feats_SxU, targets_SxT, ~test_S, lambdas_L, lambda_batch=lambda_batch)
    r_T = masked_pearson(fit.pred_SxT, jnp.asarray(targets_SxT, jnp.float32), test_S)
    return r_T, fit.best_T, jnp.where(test_S[:, None], fit.pred_SxT, 0.0)

  r_KxT, best_KxT, pred_KxSxT = jax.vmap(one)(test_KxS)
  pred_SxT = jnp.where(test_KxS.any(0)[:, None], pred_KxSxT.sum(0), jnp.nan)
  return r_KxT, best_KxT, pred_SxT


@partial(jax.jit, static_argnames=("seed_batch", "lambda_batch"))
def encoding_scores(
  feats_NxSxU: jax.Array,
  targets_SxT: jax.Array,
  test_KxS: jax.Array,
  lambdas_L: jax.Array,
  *,
  seed_batch: int | None = None,
  lambda_batch: int | None = None,
) -> EncodingScores:
  """Encoding-model scores of N feature sets (seeds) for T targets, cross-validated over stimuli.

  For each seed and fold, a ridge regression per target is fitted on the fold's training stimuli, its penalty
  chosen from ``lambdas_L`` by exact leave-one-out error inside those stimuli (``ridge_loo_fit``), and scored by
  the Pearson r between predicted and measured responses on the fold's held-out stimuli; ``r_NxT`` is the mean over
  folds (Brain-Score's convention for cross-validated predictivity, Schrimpf et al. 2018). ``test_KxS`` comes from
  ``folds.kfold_test_masks`` (K folds) or ``folds.split_test_mask`` (a dataset's fixed train/test split).

  Seeds go through ``jax.lax.map`` with ``seed_batch`` seeds vmapped at a time (None: all in one vmap); folds are
  vmapped; penalties are vmapped ``lambda_batch`` at a time. Memory grows with seed_batch x K x lambda_batch x S x T.
  """
  feats_NxSxU = jnp.asarray(feats_NxSxU, jnp.float32)

  def per_seed(feats_SxU):
    return fold_scores(feats_SxU, targets_SxT, test_KxS, lambdas_L, lambda_batch=lambda_batch)

  r_NxKxT, best_NxKxT, pred_NxSxT = jax.lax.map(per_seed, feats_NxSxU, batch_size=seed_batch)
  return EncodingScores(jnp.mean(r_NxKxT, axis=1), r_NxKxT, best_NxKxT, pred_NxSxT)
