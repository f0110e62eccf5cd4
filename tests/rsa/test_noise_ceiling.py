"""Nili noise ceiling against a NumPy loop; the permutation null sits near zero for shared structure destroyed."""

import jax
import numpy as np
import pytest
from scipy import stats

import leut.rsa as rsa


def test_noise_ceiling_matches_loop_and_null():
  rng = np.random.default_rng(0)
  S, J = 10, 3
  shared = rng.normal(size=(S, S))
  subs = []
  for _ in range(J):
    x = shared + 1.0 * rng.normal(size=(S, S))
    x = x + x.T
    np.fill_diagonal(x, 0)
    subs.append(x)
  subs = np.stack(subs).astype(np.float32)
  nc = rsa.noise_ceiling(subs, key=jax.random.key(0), n_perm=20)
  iu = np.triu_indices(S, k=1)
  lo = [stats.spearmanr(subs[j][iu], np.delete(subs, j, 0).mean(0)[iu])[0] for j in range(J)]
  up = [stats.spearmanr(subs[j][iu], subs.mean(0)[iu])[0] for j in range(J)]
  assert float(nc.lower) == pytest.approx(np.mean(lo), abs=2e-6)
  assert float(nc.upper) == pytest.approx(np.mean(up), abs=2e-6)
  np.testing.assert_allclose(np.asarray(nc.lower_J), lo, atol=2e-6)
  assert nc.null_lower.shape == (20,)
  assert abs(float(np.mean(nc.null_lower))) < 0.15
  assert float(nc.p_lower) == pytest.approx(1 / 21)
