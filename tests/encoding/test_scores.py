"""Cross-validated ridge encoding against scikit-learn (RidgeCV per target inside each KFold training split), on
hidden cases: held-out r per fold and target, and the penalty chosen for every target."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import KFold

from leut.encoding import encoding_scores, kfold_test_masks, ridge_loo_fit, split_test_mask

LAMBDAS = np.logspace(-2, 4, 7)


def _case(seed, s, u, t=8):
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(s, u)) * rng.uniform(0.3, 3.0, u) + rng.normal(size=u)
  k = min(u, 5)
  y = x[:, :k] @ rng.normal(size=(k, t)) * rng.uniform(0.1, 2.0, t) + rng.normal(size=(s, t)) * rng.uniform(0.5, 6, t)
  return x, y


def _sklearn(x, y, splits):
  r, alpha = [], []
  for train, test in splits:
    model = RidgeCV(alphas=LAMBDAS, alpha_per_target=True).fit(x[train], y[train])
    pred = model.predict(x[test])
    r.append([np.corrcoef(pred[:, j], y[test, j])[0, 1] for j in range(y.shape[1])])
    alpha.append(model.alpha_)
  return np.array(r), np.array(alpha)


@pytest.mark.parametrize("s,u", [(41, 6), (38, 60)])  # fewer features than stimuli, and more
def test_kfold_scores_and_chosen_lambdas_equal_scikit_learn(s, u):
  x, y = _case(s + u, s, u)
  got = encoding_scores(jnp.asarray(x[None]), jnp.asarray(y), jnp.asarray(kfold_test_masks(s, 5)), LAMBDAS)
  r, alpha = _sklearn(x, y, KFold(5).split(x))
  np.testing.assert_allclose(got.r_NxKxT[0], r, atol=2e-5)
  np.testing.assert_array_equal(LAMBDAS[np.asarray(got.best_NxKxT[0])], alpha)
  np.testing.assert_allclose(got.r_NxT[0], r.mean(0), atol=2e-5)


def test_fixed_split_and_seeds_vmapped_or_batched():
  x, y = _case(3, 36, 10)
  seeds = np.stack([x, np.sqrt(np.abs(x)), x[:, ::-1] * 2.0 + 1.0])
  split = np.where(np.arange(36) % 4 == 0, "test", "train")
  mask = split_test_mask(split)
  full = encoding_scores(jnp.asarray(seeds), jnp.asarray(y), jnp.asarray(mask), LAMBDAS)
  batched = encoding_scores(
    jnp.asarray(seeds), jnp.asarray(y), jnp.asarray(mask), LAMBDAS, seed_batch=1, lambda_batch=3
  )
  np.testing.assert_allclose(batched.r_NxT, full.r_NxT, atol=1e-5)  # float32 sums in another order
  np.testing.assert_array_equal(batched.best_NxKxT, full.best_NxKxT)
  train, test = np.flatnonzero(split == "train"), np.flatnonzero(split == "test")
  for n in range(3):
    r, alpha = _sklearn(seeds[n], y, [(train, test)])
    np.testing.assert_allclose(full.r_NxT[n], r[0], atol=2e-5)
    np.testing.assert_array_equal(LAMBDAS[np.asarray(full.best_NxKxT[n, 0])], alpha[0])


def test_leave_one_out_errors_equal_scikit_learns():
  x, y = _case(5, 30, 45)
  train = np.arange(30) < 24
  fit = jax.jit(ridge_loo_fit)(jnp.asarray(x), jnp.asarray(y), jnp.asarray(train), LAMBDAS)
  ref = RidgeCV(alphas=LAMBDAS, alpha_per_target=True, store_cv_results=True).fit(x[train], y[train])
  np.testing.assert_allclose(fit.loo_mse_LxT, ref.cv_results_.mean(axis=0).T, rtol=1e-4)
  np.testing.assert_allclose(fit.pred_SxT[~train], ref.predict(x[~train]), rtol=1e-4, atol=1e-4)


def test_undefined_targets_are_nan_and_do_not_touch_the_others():
  x, y = _case(9, 41, 6)
  y[:, 2] = 4.0  # constant: r undefined
  y[5, 6] = np.nan  # not finite
  got = encoding_scores(jnp.asarray(x[None]), jnp.asarray(y), jnp.asarray(kfold_test_masks(41, 5)), LAMBDAS)
  assert np.isnan(got.r_NxT[0, [2, 6]]).all()
  keep = [0, 1, 3, 4, 5, 7]
  r, alpha = _sklearn(x, y[:, keep], KFold(5).split(x))
  np.testing.assert_allclose(got.r_NxKxT[0][:, keep], r, atol=2e-5)
  np.testing.assert_array_equal(LAMBDAS[np.asarray(got.best_NxKxT[0])][:, keep], alpha)
