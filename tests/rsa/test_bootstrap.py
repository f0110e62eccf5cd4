"""Stimulus bootstrap against a float64 NumPy / rsatoolbox loop over the same resample indices; undefined draws."""

import jax
import numpy as np
import pytest
from rsatoolbox.rdm import RDMs
from rsatoolbox.rdm.compare import compare_rho_a
from scipy import stats

import leut.rsa as rsa
from tests.rsa.random_rdms import symmetric as _sym


def _reference(models, subs, idx, runs, method):
  S = idx.shape[1]
  iu, ju = np.triu_indices(S, k=1)
  out = np.zeros((len(models), len(subs), len(idx)))
  for b, s in enumerate(idx):
    a, c = s[iu], s[ju]
    keep = a != c
    if runs is not None:
      keep &= np.all(runs[:, a] != runs[:, c], axis=0)
    for m, mod in enumerate(models):
      for j, sub in enumerate(subs):
        x = mod[a[keep], c[keep]].astype(np.float64)
        y = sub[a[keep], c[keep]].astype(np.float64)
        distinct = len({(min(i, j), max(i, j)) for i, j in zip(a[keep], c[keep])})
        if distinct < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
          out[m, j, b] = np.nan  # leut's policy: no correlation of fewer than 2 pairs or of a constant vector
        elif method == "spearman":
          out[m, j, b] = stats.spearmanr(x, y)[0]
        elif method == "pearson":
          out[m, j, b] = stats.pearsonr(x, y)[0]
        else:
          out[m, j, b] = compare_rho_a(RDMs(x[None]), RDMs(y[None]))[0, 0]
  return out


@pytest.mark.parametrize("method", ["spearman", "pearson", "rho_a"])
def test_bootstrap_matches_loop_with_ties_and_runs(method):
  rng = np.random.default_rng(0)
  S = 13
  models = np.stack([_sym(rng, S), _sym(rng, S, 0), _sym(rng, S)]).reshape(3, S, S)
  subs = np.stack([_sym(rng, S), _sym(rng, S, 1)])
  runs = rng.integers(0, 3, (2, S))
  idx = rng.integers(0, S, (6, S))
  res = rsa.bootstrap(models, subs, indices_BxS=idx, runs_JxS=runs, method=method)
  ref = _reference(models, subs, idx, runs, method)
  np.testing.assert_allclose(np.asarray(res.scores), ref, atol=2e-6)
  np.testing.assert_array_equal(np.asarray(res.indices), idx)
  full = _reference(models, subs, np.arange(S)[None], runs, method)[..., 0]
  np.testing.assert_allclose(np.asarray(res.observed), full, atol=2e-6)


def test_bootstrap_key_shared_indices_make_paired_differences():
  rng = np.random.default_rng(1)
  S = 12
  models = np.stack([_sym(rng, S) for _ in range(4)]).reshape(2, 2, S, S)  # condition x seed
  subs = _sym(rng, S)[None]
  res = rsa.bootstrap(models, subs, key=jax.random.key(3), n_boot=40)
  assert res.scores.shape == (2, 2, 1, 40) and res.indices.shape == (40, S)
  again = rsa.bootstrap(models[1], subs, indices_BxS=res.indices)
  np.testing.assert_allclose(np.asarray(again.scores), np.asarray(res.scores[1]), atol=1e-7)
  ref = _reference(models.reshape(4, S, S), subs, np.asarray(res.indices), None, "spearman").reshape(2, 2, 1, 40)
  np.testing.assert_allclose(np.asarray(res.scores), ref, atol=2e-6)


def test_bootstrap_p_and_ci():
  d = np.array([-0.2, 0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.1, 1.3])
  # #{d<=0} = 2, #{d>=0} = 8 -> (2*2 + 1) / 10
  assert float(rsa.bootstrap_p(d)) == pytest.approx(0.5)
  assert float(rsa.bootstrap_p(np.ones(99))) == pytest.approx(1 / 100)
  lo, hi = rsa.percentile_ci(np.arange(101.0), 0.9)
  assert float(lo) == pytest.approx(5.0) and float(hi) == pytest.approx(95.0)


def test_jittable_core_matches_host_wrapper_with_ties():
  rng = np.random.default_rng(2)
  S = 11
  models = np.stack([_sym(rng, S, 0), _sym(rng, S)])
  subs = np.stack([_sym(rng, S, 0)])
  idx = rng.integers(0, S, (4, S))
  iu = np.triu_indices(S, k=1)
  core = jax.jit(rsa.bootstrap_scores, static_argnames=("method", "model_ties", "subject_ties", "batch_size"))
  got = core(models[:, iu[0], iu[1]], subs[:, iu[0], iu[1]], idx, np.ones(len(iu[0]), np.float32))
  ref = rsa.bootstrap(models, subs, indices_BxS=idx).scores
  np.testing.assert_allclose(np.asarray(got), np.asarray(ref), atol=1e-6)


def test_dot_only_library_fusion_leaves_scores_unchanged():
  """The XLA:CPU option used for speed must not change a single score beyond float32 rounding."""
  from leut.xla_cpu import dot_only_library_fusion

  options = dot_only_library_fusion()
  assert options in ({}, {"xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_DOT"})
  rng = np.random.default_rng(5)
  S = 40
  models = np.stack([_sym(rng, S), _sym(rng, S, 0), _sym(rng, S)])
  subs = np.stack([_sym(rng, S), _sym(rng, S, 1)])
  idx = rng.integers(0, S, (6, S))
  iu = np.triu_indices(S, k=1)
  args = (models[:, iu[0], iu[1]], subs[:, iu[0], iu[1]], idx, np.ones(len(iu[0]), np.float32))
  static = ("method", "model_ties", "subject_ties", "batch_size")
  plain = jax.jit(rsa.bootstrap_scores, static_argnames=static)(*args)
  extra = {"compiler_options": options} if options else {}
  tuned = jax.jit(rsa.bootstrap_scores, static_argnames=static, **extra)(*args)
  np.testing.assert_allclose(np.asarray(tuned), np.asarray(plain), atol=1e-6)
  np.testing.assert_allclose(np.asarray(tuned), _reference(models, subs, idx, None, "spearman"), atol=1e-5)


@pytest.mark.parametrize("method", ["spearman", "pearson", "rho_a"])
def test_undefined_draws_are_nan_and_counted(method):
  """Draws with fewer than two distinct pairs, or a model constant on the drawn pairs, have no correlation."""
  rng = np.random.default_rng(7)
  S = 6
  model = _sym(rng, S)
  model[np.ix_([0, 1, 2], [0, 1, 2])] = 1.0  # constant on the pairs among stimuli 0, 1, 2
  np.fill_diagonal(model, 0)
  subs = np.stack([_sym(rng, S), _sym(rng, S, 0)])
  idx = np.array(
    [
      [0, 0, 0, 0, 0, 0],  # no pair at all
      [0, 0, 0, 1, 1, 1],  # one distinct pair, repeated 9 times
      [0, 1, 2, 2, 1, 0],  # three distinct pairs, the model constant on them
      [0, 1, 2, 3, 4, 5],  # every pair
      [5, 3, 3, 1, 0, 2],
    ]
  )
  res = rsa.bootstrap(model[None], subs, indices_BxS=idx, method=method)
  scores = np.asarray(res.scores)[0]  # J x B
  assert np.isnan(scores[:, :3]).all(), scores
  assert np.isfinite(scores[:, 3:]).all(), scores
  np.testing.assert_allclose(scores, _reference(model[None], subs, idx, None, method)[0], atol=2e-6)
  assert np.asarray(rsa.n_defined(scores)).tolist() == [2, 2]


def test_ci_and_p_use_the_defined_draws_and_need_enough_of_them():
  rng = np.random.default_rng(8)
  d = rng.normal(size=200)
  with_undefined = np.concatenate([d, np.full(50, np.nan)])
  lo, hi = rsa.percentile_ci(with_undefined)
  np.testing.assert_allclose([float(lo), float(hi)], np.quantile(d, [0.025, 0.975]), rtol=1e-5)
  n_le, n_ge = np.sum(d <= 0), np.sum(d >= 0)
  assert float(rsa.bootstrap_p(with_undefined)) == pytest.approx((2 * min(n_le, n_ge) + 1) / (200 + 1), rel=1e-6)
  assert int(rsa.n_defined(with_undefined)) == 200
  assert rsa.min_defined_draws(0.95) == 40 and rsa.min_defined_draws(0.9) == 20
  lo, hi = rsa.percentile_ci(np.concatenate([d[:39], np.full(300, np.nan)]))  # 39 < 40 defined draws
  assert np.isnan(float(lo)) and np.isnan(float(hi))
  assert np.isfinite(float(rsa.percentile_ci(d[:40])[0]))
  assert np.isnan(float(rsa.bootstrap_p(np.full(10, np.nan))))


def test_non_finite_rdms_are_refused_by_the_host_wrapper_and_nan_in_the_kernel():
  rng = np.random.default_rng(9)
  S = 7
  model, sub = _sym(rng, S), _sym(rng, S)
  bad = model.copy()
  bad[1, 2] = bad[2, 1] = np.nan
  with pytest.raises(rsa.NonFiniteInputError, match="model_rdms has 1 NaN/inf"):
    rsa.bootstrap(bad, sub[None], key=jax.random.key(0), n_boot=4)
  with pytest.raises(rsa.NonFiniteInputError, match="subject_rdms"):
    rsa.bootstrap(model, np.where(np.eye(S) > 0, 0, np.inf)[None], key=jax.random.key(0), n_boot=4)
  iu = np.triu_indices(S, k=1)
  idx = rng.integers(0, S, (4, S))
  got = np.asarray(
    rsa.bootstrap_scores(np.stack([bad[iu], model[iu]]), sub[iu][None], idx, np.ones(len(iu[0]), np.float32))
  )
  assert np.isnan(got[0]).all() and np.isfinite(got[1]).all()
