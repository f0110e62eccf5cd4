"""Linear CKA against float64 NumPy computations from the HSIC definitions, its closed-form invariances, and NaN
where it is undefined."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from leut.rsa import cka


def _hsic_biased_np(k, l):
  n = k.shape[0]
  h = np.eye(n) - np.ones((n, n)) / n  # explicit centring matrix
  return np.trace(k @ h @ l @ h) / (n - 1) ** 2


def _u_centre(k):
  """Székely-Rizzo U-centring of a Gram matrix; sum_ij U(K)_ij U(L)_ij / (n(n-3)) is the unbiased HSIC."""
  n = k.shape[0]
  k = k.copy()
  np.fill_diagonal(k, 0.0)
  row = k.sum(0) / (n - 2)
  u = k - row[:, None] - row[None, :] + k.sum() / ((n - 1) * (n - 2))
  np.fill_diagonal(u, 0.0)
  return u


def _hsic_unbiased_np(k, l):
  n = k.shape[0]
  return np.sum(_u_centre(k) * _u_centre(l)) / (n * (n - 3))


def _cka_np(x, y, debiased):
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  k, l = x @ x.T, y @ y.T  # uncentred: the estimators centre
  hsic = _hsic_unbiased_np if debiased else _hsic_biased_np
  return hsic(k, l) / np.sqrt(hsic(k, k) * hsic(l, l))


@pytest.mark.parametrize("debiased", [False, True])
def test_matches_float64_hsic_definitions_on_hidden_cases(debiased):
  rng = np.random.default_rng(7)
  for s, u, v in ((6, 1, 3), (17, 40, 5), (33, 8, 48)):  # few / many features, either side
    x = rng.normal(size=(3, s, u)) * rng.uniform(0.1, 5.0, u) + rng.normal(size=u)
    y = x @ rng.normal(size=(u, v)) * 0.3 + rng.normal(size=(3, s, v))  # related, not identical
    got = np.asarray(cka(x.astype(np.float32), y.astype(np.float32), debiased=debiased))
    want = [_cka_np(x[i], y[i], debiased) for i in range(3)]
    np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-5)


@pytest.mark.parametrize("debiased", [False, True])
def test_closed_form_invariances(debiased):
  rng = np.random.default_rng(0)
  x = rng.normal(size=(25, 9)).astype(np.float32)
  q, _ = np.linalg.qr(rng.normal(size=(9, 9)))
  same = [x, x @ q.astype(np.float32), 7.5 * x, x + 3.0, -0.2 * (x @ q.astype(np.float32)) + 1.0]
  np.testing.assert_allclose(cka(np.stack([x] * 5), np.stack(same), debiased=debiased), 1.0, atol=2e-5)
  assert cka(x, rng.normal(size=(25, 4)), debiased=debiased) < 0.6


def test_broadcasts_leading_axes_and_jits():
  rng = np.random.default_rng(1)
  feats = rng.normal(size=(4, 2, 12, 6)).astype(np.float32)  # seeds x layers
  brain = rng.normal(size=(12, 30)).astype(np.float32)
  got = jax.jit(cka, static_argnames="debiased")(feats, brain, debiased=True)
  assert got.shape == (4, 2)
  np.testing.assert_allclose(got[3, 1], _cka_np(feats[3, 1], brain, True), rtol=2e-4, atol=2e-5)
  np.testing.assert_allclose(jax.vmap(lambda f: cka(f, brain))(feats), cka(feats, brain), rtol=1e-6)


def test_undefined_cases_are_nan_or_refused():
  rng = np.random.default_rng(2)
  x = rng.normal(size=(10, 5)).astype(np.float32)
  constant = np.full((10, 3), 0.1, np.float32)
  with_nan = x.copy()
  with_nan[2, 1] = np.nan
  for debiased in (False, True):
    assert np.isnan(cka(x, constant, debiased=debiased))
    assert np.isnan(cka(constant, x, debiased=debiased))
    assert np.isnan(cka(with_nan, x, debiased=debiased))
  assert np.isfinite(cka(jnp.asarray(x), x))
  with pytest.raises(ValueError, match="at least 4 stimuli"):
    cka(x[:3], x[:3], debiased=True)
  with pytest.raises(ValueError, match="10 stimuli and feats_b 9"):
    cka(x, x[:9])
