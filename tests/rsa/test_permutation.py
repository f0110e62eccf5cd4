"""Paired stimulus-label permutation test against a float64 NumPy loop over the same permutations."""

import jax
import numpy as np
import pytest
from scipy import stats

import leut.rsa as rsa
from tests.rsa.random_rdms import symmetric as _sym


@pytest.mark.parametrize("masked", [False, True])
def test_paired_permutation_matches_loop(masked):
  rng = np.random.default_rng(0)
  S = 12
  brain = _sym(rng, S, 1)
  a = brain + 1.5 * _sym(rng, S)
  b = _sym(rng, S, 0)
  mask = None
  if masked:
    runs = rng.integers(0, 3, (1, S))
    mask = np.asarray(rsa.cross_run_mask(runs))
  res = rsa.permutation_test(a, brain, b, key=jax.random.key(0), n_perm=60, pair_mask=mask)
  perms = np.asarray(res.perms)
  iu, ju = np.triu_indices(S, k=1)
  keep = np.ones(len(iu), bool) if mask is None else mask[iu, ju]

  def score(m, br):
    return stats.spearmanr(m[iu, ju][keep], br[iu, ju][keep])[0]

  obs = score(a, brain) - score(b, brain)
  null = np.array([score(a, brain[np.ix_(p, p)]) - score(b, brain[np.ix_(p, p)]) for p in perms])
  assert float(res.observed) == pytest.approx(obs, abs=2e-6)
  np.testing.assert_allclose(np.asarray(res.null), null, atol=2e-6)
  p_ref = (1 + np.sum(np.abs(null) >= np.abs(obs) - 1e-9)) / (1 + len(null))
  assert float(res.p) == pytest.approx(p_ref)
  assert 0 < float(res.p) <= 1


def test_single_model_one_sided_and_batched():
  rng = np.random.default_rng(1)
  S = 10
  brain = _sym(rng, S)
  models = np.stack([brain + 0.3 * _sym(rng, S), _sym(rng, S)])
  res = rsa.permutation_test(models, brain, key=jax.random.key(1), n_perm=99, alternative="greater")
  assert res.null.shape == (2, 99)
  assert float(res.p[0]) == pytest.approx(1 / 100)  # strong signal: nothing in the null beats it
  assert float(res.p[1]) > 0.01
