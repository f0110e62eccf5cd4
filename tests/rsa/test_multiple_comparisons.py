"""BH and Holm against statsmodels; Cohen's d variants against NumPy."""

import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests

import leut.rsa as rsa


def test_fdr_bh_and_holm_match_statsmodels():
  rng = np.random.default_rng(0)
  p = np.concatenate([rng.uniform(0, 0.05, 7), rng.uniform(0, 1, 30), [0.01, 0.01]])  # ties included
  np.testing.assert_allclose(np.asarray(rsa.fdr_bh(p)), multipletests(p, method="fdr_bh")[1], rtol=1e-5)
  np.testing.assert_allclose(np.asarray(rsa.holm(p)), multipletests(p, method="holm")[1], rtol=1e-5)
  batch = rng.uniform(0, 0.2, (3, 10))
  got = np.asarray(rsa.fdr_bh(batch))
  for i in range(3):
    np.testing.assert_allclose(got[i], multipletests(batch[i], method="fdr_bh")[1], rtol=1e-5)


def test_cohens_d():
  rng = np.random.default_rng(1)
  a, b = rng.normal(size=5), rng.normal(size=5)
  diff = a - b
  assert float(rsa.cohens_d(a, b)) == pytest.approx(diff.mean() / diff.std(ddof=1), rel=1e-5)
  assert float(rsa.cohens_d(diff)) == pytest.approx(diff.mean() / diff.std(ddof=1), rel=1e-5)
  pooled = (a.mean() - b.mean()) / np.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2)
  assert float(rsa.cohens_d(a, b, paired=False)) == pytest.approx(pooled, rel=1e-5)


def test_cohens_d_with_zero_spread_is_not_defined():
  same = np.full(5, 0.03)
  a = np.array([0.10, 0.20, 0.15, 0.30, 0.25])
  assert np.isnan(float(rsa.cohens_d(same)))  # was +inf
  assert np.isnan(float(rsa.cohens_d(a + 0.03, a)))  # every seed differs by the same amount (up to rounding)
  assert np.isnan(float(rsa.cohens_d(-same)))  # was -inf
  assert np.isnan(float(rsa.cohens_d(np.zeros(5))))
  assert np.isnan(float(rsa.cohens_d(same, np.zeros(5), paired=False)))
  assert np.isnan(float(rsa.cohens_d(np.array([0.2]))))  # one value: no spread to measure
  tiny = same + np.array([0, 1, -1, 2, 0]) * 1e-3  # a real, small spread keeps its (large) d
  assert float(rsa.cohens_d(tiny)) == pytest.approx(tiny.mean() / tiny.std(ddof=1), rel=1e-4)
