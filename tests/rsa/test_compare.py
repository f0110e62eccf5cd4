"""compare() against scipy spearmanr/pearsonr, float64 NumPy tau-a, rsatoolbox and Monte-Carlo rho-a; undefined
comparisons; aggregation schemes."""

import jax
import numpy as np
import pytest
from rsatoolbox.rdm import RDMs
from rsatoolbox.rdm.compare import compare_rho_a
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
  """rsatoolbox's rho-a (Nili et al. 2014) of two vectors."""
  return float(compare_rho_a(RDMs(np.asarray(x, np.float64)[None]), RDMs(np.asarray(y, np.float64)[None]))[0, 0])


def _rho_a_monte_carlo(x, y, n_draws, seed=0):
  """Mean Spearman rho over random tie breaking: both vectors ranked with ties broken by a random permutation."""
  rng = np.random.default_rng(seed)
  n = len(x)
  total = 0.0
  for _ in range(n_draws):
    rx = np.empty(n)
    ry = np.empty(n)
    rx[np.lexsort((rng.permutation(n), x))] = np.arange(n)  # sort by value, ties in random order
    ry[np.lexsort((rng.permutation(n), y))] = np.arange(n)
    total += np.corrcoef(rx, ry)[0, 1]
  return total / n_draws


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


def test_rho_a_with_ties_is_the_expected_spearman_under_random_tie_breaking():
  """A two-category model against a graded brain RDM: rsatoolbox and random tie breaking agree, and so must leut;
  the old 1 - 6 sum d^2 / (n^3 - n) on average ranks (0.697 here) did not."""
  S = 8
  cat = np.repeat([0, 1], S // 2)
  model = (cat[:, None] != cat[None]).astype(np.float32)  # 2 distinct values: 16 between, 12 within
  rng = np.random.default_rng(5)
  brain = model + rng.normal(scale=1.5, size=(S, S)).astype(np.float32)
  brain = brain + brain.T
  iu = np.triu_indices(S, k=1)
  x, y = model[iu], brain[iu]
  got = float(rsa.compare(x, y, "rho_a"))
  ref = _rho_a(x, y)
  assert got == pytest.approx(ref, abs=1e-6)
  assert got == pytest.approx(_rho_a_monte_carlo(x, y, 4000), abs=0.01)
  n = len(x)
  old = 1 - 6 * np.sum((stats.rankdata(x) - stats.rankdata(y)) ** 2) / (n**3 - n)
  assert abs(old - ref) > 0.1  # the case discriminates the two formulas
  assert got < float(rsa.compare(x, y, "spearman"))  # no tie correction in the denominator


def test_rho_a_with_ties_in_both_vectors_and_a_mask_matches_rsatoolbox():
  rng = np.random.default_rng(6)
  x = np.round(rng.normal(size=60), 0)
  y = np.round(rng.normal(size=60), 1)
  keep = rng.random(60) < 0.7
  assert float(rsa.compare(x, y, "rho_a", pair_mask=keep)) == pytest.approx(_rho_a(x[keep], y[keep]), abs=1e-6)
  assert float(rsa.compare(x, y, "rho_a")) == pytest.approx(_rho_a_monte_carlo(x, y, 3000, seed=1), abs=0.01)


@pytest.mark.parametrize("method", rsa.compare.__globals__["METHODS"])
def test_undefined_comparisons_are_nan_for_every_method(method):
  rng = np.random.default_rng(7)
  S = 6
  a, b = _sym(rng, S), _sym(rng, S)
  iu = np.triu_indices(S, k=1)
  P = len(iu[0])
  one_pair = np.zeros(P, bool)
  one_pair[3] = True
  with_nan = a.copy()
  with_nan[0, 2] = with_nan[2, 0] = np.nan
  with_inf = a.copy()
  with_inf[1, 4] = with_inf[4, 1] = np.inf
  ramp = np.zeros((S, S), np.float32)
  ramp[iu] = np.arange(P)
  ramp[:2, 2:] = 5.0  # equal on the pairs (0|1, 2..5) and graded elsewhere
  ramp = np.triu(ramp, 1) + np.triu(ramp, 1).T
  first_rows = np.zeros((S, S), bool)
  first_rows[:2, 2:] = True
  cases = {
    "empty pair mask": rsa.compare(a, b, method, pair_mask=np.zeros(P, bool)),
    "a single pair": rsa.compare(a, b, method, pair_mask=one_pair),
    "two stimuli": rsa.compare(a[:2, :2], b[:2, :2], method),
    "constant model": rsa.compare(np.ones((S, S), np.float32) - np.eye(S, dtype=np.float32), b, method),
    "constant brain": rsa.compare(a[iu], np.full(P, 0.7, np.float32), method),
    "constant on the kept pairs": rsa.compare(a, ramp, method, pair_mask=first_rows | first_rows.T),
    "NaN entry": rsa.compare(with_nan, b, method),
    "inf entry": rsa.compare(a, with_inf, method),
  }
  assert np.isfinite(float(rsa.compare(a, ramp, method)))  # the same RDM on all pairs is fine
  for name, value in cases.items():
    assert np.isnan(float(value)), (method, name, float(value))
  # a NaN outside the pair mask is ignored
  keep = np.ones((S, S), bool)
  keep[0, 2] = keep[2, 0] = False
  assert float(rsa.compare(with_nan, b, method, pair_mask=keep)) == pytest.approx(
    float(rsa.compare(a, b, method, pair_mask=keep)), abs=1e-6
  )
  # batched: an undefined row does not spill into its neighbours
  both = np.asarray(rsa.compare(np.stack([with_nan, a]), b[None], method))
  assert np.isnan(both[0]) and np.isfinite(both[1])


def test_ranks_of_a_row_with_a_kept_non_finite_entry_are_nan():
  x = np.array([[3.0, 1.0, np.nan, 2.0], [3.0, 1.0, np.inf, 2.0], [3.0, 1.0, 0.5, 2.0]])
  r = np.asarray(rsa.rank_average(x))
  assert np.isnan(r[:2]).all()
  np.testing.assert_array_equal(r[2], stats.rankdata(x[2]))
  w = np.array([1.0, 1.0, 0.0, 1.0])  # the NaN has weight 0: ignored by the others
  rw = np.asarray(rsa.rank_average(x[0], w))
  np.testing.assert_array_equal(rw[[0, 1, 3]], stats.rankdata(x[0, [0, 1, 3]]))
  assert np.isnan(rw[2])
  z = np.asarray(rsa.centred_unit(np.array([[1.0, 1.0, 1.0], [1.0, 2.0, np.nan], [0.1, 0.1, 0.1]])))
  assert np.isnan(z).all()


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
