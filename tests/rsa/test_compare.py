"""compare() against scipy spearmanr/pearsonr and float64 NumPy tau-a / rho-a; aggregation schemes."""

import jax
import numpy as np
import pytest
from scipy import stats

import leut.rsa as rsa
from tests.rsa.random_rdms import symmetric as _sym


def _tau_a_loop(x, y):
  n = len(x)
  s = 0.0
  for i in range(n):
    for j in range(i + 1, n):
      s += np.sign(x[i] - x[j]) * np.sign(y[i] - y[j])
  return s / (n * (n - 1) / 2)


def _rho_a(x, y):
  rx, ry = stats.rankdata(x), stats.rankdata(y)
  n = len(x)
  return 1 - 6 * np.sum((rx - ry) ** 2) / (n**3 - n)


def test_spearman_pearson_with_ties_broadcast():
  rng = np.random.default_rng(0)
  a = np.stack([_sym(rng, 12, 0), _sym(rng, 12)])  # first has many ties
  b = np.stack([_sym(rng, 12, 1) for _ in range(3)])
  sp = np.asarray(jax.jit(rsa.compare)(a[:, None], b[None]))
  pe = np.asarray(rsa.compare(a[:, None], b[None], "pearson"))
  iu = np.triu_indices(12, k=1)
  for i in range(2):
    for j in range(3):
      x, y = a[i][iu].astype(float), b[j][iu].astype(float)
      assert sp[i, j] == pytest.approx(stats.spearmanr(x, y)[0], abs=2e-6)
      assert pe[i, j] == pytest.approx(stats.pearsonr(x, y)[0], abs=2e-6)


def test_rank_average_matches_rankdata_with_ties():
  x = np.round(np.random.default_rng(1).normal(size=(3, 50)), 0)
  np.testing.assert_allclose(np.asarray(rsa.rank_average(x)), stats.rankdata(x, axis=-1))


def test_kendall_tau_a_and_rho_a():
  rng = np.random.default_rng(2)
  x = np.round(rng.normal(size=45), 0)  # ties: tau-a counts them as 0 and differs from scipy's tau-b
  y = np.round(rng.normal(size=45), 1)
  assert float(rsa.compare(x, y, "kendall_tau_a")) == pytest.approx(_tau_a_loop(x, y), abs=1e-6)
  assert float(rsa.compare(x, y, "rho_a")) == pytest.approx(_rho_a(x, y), abs=1e-6)
  xc, yc = rng.normal(size=45), rng.normal(size=45)  # tie-free: tau-a == tau-b
  assert float(rsa.compare(xc, yc, "kendall_tau_a")) == pytest.approx(stats.kendalltau(xc, yc)[0], abs=1e-6)


@pytest.mark.parametrize("method", ["spearman", "pearson", "rho_a", "kendall_tau_a"])
def test_pair_mask_equals_subsetting(method):
  rng = np.random.default_rng(3)
  a, b = _sym(rng, 10, 1), _sym(rng, 10, 1)
  mask = rng.random((10, 10)) < 0.6
  mask = mask | mask.T
  iu = np.triu_indices(10, k=1)
  keep = mask[iu]
  got = float(rsa.compare(a, b, method, pair_mask=mask))
  ref = float(rsa.compare(a[iu][keep], b[iu][keep], method))
  x, y = a[iu][keep].astype(float), b[iu][keep].astype(float)
  exact = {
    "spearman": stats.spearmanr(x, y)[0],
    "pearson": stats.pearsonr(x, y)[0],
    "rho_a": _rho_a(x, y),
    "kendall_tau_a": _tau_a_loop(x, y),
  }[method]
  assert got == pytest.approx(ref, abs=1e-6)
  assert got == pytest.approx(exact, abs=2e-6)


def test_mean_rdm_vs_mean_subject_schemes():
  rng = np.random.default_rng(4)
  model = np.stack([_sym(rng, 11) for _ in range(2)])
  subs = np.stack([_sym(rng, 11) for _ in range(3)])
  iu = np.triu_indices(11, k=1)
  mr = np.asarray(rsa.mean_rdm_score(model, subs))
  ms, per = rsa.mean_subject_score(model, subs, return_per_subject=True)
  for m in range(2):
    assert mr[m] == pytest.approx(stats.spearmanr(model[m][iu], subs.mean(0)[iu])[0], abs=2e-6)
    ref = [stats.spearmanr(model[m][iu], s[iu])[0] for s in subs]
    np.testing.assert_allclose(np.asarray(per)[m], ref, atol=2e-6)
    assert float(ms[m]) == pytest.approx(np.mean(ref), abs=2e-6)
