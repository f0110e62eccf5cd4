"""Two-level bootstrap (seeds × stimuli): against a float64 NumPy/scipy loop that expands every resample, the
closed-form reductions (one seed: the stimulus bootstrap; identity stimulus resamples: a seed bootstrap), undefined
draws counted, and the rows of the tiny run (diff = the sign-flip test's mean_diff)."""

import types
import warnings

import jax
import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import pdist, squareform
from scipy.stats import spearmanr

from leut import rsa
from leut.scoring import bootstrap_differences, stimulus_stats
from leut.scoring import two_level_bootstrap as tlb


def _rdms(rng, n, s):
  return np.stack([squareform(pdist(rng.normal(size=(s, 6)), "correlation")) for _ in range(n)])


def _condition_draws(model_NxSxS, brain, n_boot, valid_N=None):
  seed_draws = []
  rows, draws = stimulus_stats.bootstrap_draws(
    rule="r",
    epoch=0,
    step=0,
    layer="conv1",
    model_NxSxS=model_NxSxS.astype(np.float32),
    brain=brain,
    masks={"all": np.ones(brain.rdms_RxJxSxS.shape[-2:], bool)},
    resolution=32,
    arm="native",
    n_boot=n_boot,
    valid_N=valid_N,
    seed_draws=seed_draws,
  )
  return rows[0], draws[0], seed_draws[0]


def _loop_rho(model_SxS, brain_SxS, idx_S):
  """Spearman ρ of one expanded stimulus resample: every position pair i < l with different stimuli, NaN if fewer
  than two such pairs or a constant vector."""
  a, b = [], []
  for i in range(len(idx_S)):
    for k in range(i + 1, len(idx_S)):
      if idx_S[i] != idx_S[k]:
        a.append(model_SxS[idx_S[i], idx_S[k]])
        b.append(brain_SxS[idx_S[i], idx_S[k]])
  if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
    return np.nan
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    return spearmanr(a, b).statistic


def _loop_two_level_diff(m_a, m_b, brain_JxSxS, stim_BxS, seed_BxK):
  out = np.empty(len(stim_BxS))
  for b_, (idx, seeds) in enumerate(zip(stim_BxS, seed_BxK)):
    d = []
    for n in seeds:
      x = [np.mean([_loop_rho(m[n], brain_JxSxS[j], idx) for j in range(len(brain_JxSxS))]) for m in (m_a, m_b)]
      d.append(x[0] - x[1])
    out[b_] = np.mean(d)
  return out


def _brain(rng, s, j=2):
  return types.SimpleNamespace(rdms_RxJxSxS=_rdms(rng, j, s)[None].astype(np.float32), rois=["V1"])


def _contrast(boot_a, boot_b, sd_a, sd_b):
  keys = pd.DataFrame([dict(boot_b, rule="untrained", epoch=0), dict(boot_a, rule="backprop", epoch=1)])
  obs = np.stack([sd_b[0], sd_a[0]])
  draws = np.stack([sd_b[1], sd_a[1]])
  return keys, obs, draws


@pytest.mark.parametrize("s, n_boot", [(7, 60), (3, 80)])  # 3 stimuli: many resamples hold < 2 distinct pairs
def test_difference_equals_a_float64_loop_over_expanded_resamples(s, n_boot):
  rng = np.random.default_rng(s)
  brain = _brain(rng, s)
  m_a, m_b = _rdms(rng, 3, s), _rdms(rng, 3, s)
  row_a, _, sd_a = _condition_draws(m_a, brain, n_boot)
  row_b, _, sd_b = _condition_draws(m_b, brain, n_boot)
  out = tlb.difference_table(*_contrast(row_a, row_b, sd_a, sd_b)).iloc[0]
  stim_BxS = np.asarray(rsa.resample_indices(jax.random.key(stimulus_stats.BOOTSTRAP_SEED), n_boot, s))
  seed_BxK = np.asarray(tlb.seed_indices(n_boot, 3))
  want_B = _loop_two_level_diff(m_a, m_b, brain.rdms_RxJxSxS[0].astype(np.float64), stim_BxS, seed_BxK)
  ok = np.isfinite(want_B)
  ident = np.arange(s)
  per_seed = [
    np.mean([_loop_rho(m_a[n], brain.rdms_RxJxSxS[0, j], ident) for j in range(2)])
    - np.mean([_loop_rho(m_b[n], brain.rdms_RxJxSxS[0, j], ident) for j in range(2)])
    for n in range(3)
  ]
  assert (out.contrast, out.n_seeds, out.n_boot, out.generalises_over) == (
    "vs_untrained",
    3,
    n_boot,
    tlb.GENERALISES_OVER,
  )
  np.testing.assert_allclose(out["diff"], np.mean(per_seed), atol=1e-5)
  assert out.n_undefined == (~ok).sum()
  if s == 3:
    assert out.n_undefined > 0
  if ok.sum() >= rsa.min_defined_draws():
    np.testing.assert_allclose([out.ci_lo, out.ci_hi], np.percentile(want_B[ok], [2.5, 97.5]), atol=1e-5)
  else:
    assert np.isnan(out.ci_lo) and np.isnan(out.ci_hi)
  p = min(1.0, (2 * min((want_B[ok] <= 0).sum(), (want_B[ok] >= 0).sum()) + 1) / (ok.sum() + 1))
  np.testing.assert_allclose(out.p, p)


def test_with_one_seed_it_is_the_stimulus_bootstrap():
  rng = np.random.default_rng(5)
  brain = _brain(rng, 7)  # the shapes of the loop test (7 stimuli, 60 draws): its compilations are reused
  (row_a, d_a, sd_a), (row_b, d_b, sd_b) = (_condition_draws(_rdms(rng, 1, 7), brain, 60) for _ in range(2))
  keys, obs, draws = _contrast(row_a, row_b, sd_a, sd_b)
  got = tlb.difference_table(keys, obs, draws).iloc[0]
  want = bootstrap_differences.difference_table(keys.assign(rho=obs[:, 0]), np.stack([d_b, d_a])).iloc[0]
  for col in ("diff", "ci_lo", "ci_hi", "p", "n_undefined"):
    np.testing.assert_allclose(got[col], want[col], atol=1e-6, err_msg=col)


def test_with_identity_stimulus_resamples_it_is_a_seed_bootstrap():
  rng = np.random.default_rng(6)
  x_N = rng.normal(size=7)
  seed_BxK = np.asarray(tlb.seed_indices(500, 7))
  got = np.asarray(tlb.two_level_draws(np.repeat(x_N[:, None], 500, axis=1).astype(np.float32), seed_BxK))
  want = np.array([np.mean([x_N[k] for k in row]) for row in seed_BxK])
  np.testing.assert_allclose(got, want, atol=1e-6)
  assert 0 < np.std(got) < np.std(x_N)  # a real resampling of seeds: spread ≈ SD / sqrt(K)


def test_an_undefined_seed_draw_is_undefined_only_where_that_seed_is_drawn():
  x_KxB = np.ones((4, 300), np.float32)
  x_KxB[2, ::3] = np.nan
  seed_BxK = np.asarray(tlb.seed_indices(300, 4))
  got = np.asarray(tlb.two_level_draws(x_KxB, seed_BxK))
  want_nan = np.array([(b % 3 == 0) and (2 in row) for b, row in enumerate(seed_BxK)])
  np.testing.assert_array_equal(np.isnan(got), want_nan)
  np.testing.assert_allclose(got[~want_nan], 1.0)


def test_a_seed_left_out_of_either_condition_is_not_resampled():
  rng = np.random.default_rng(7)
  brain = _brain(rng, 7)
  valid = np.array([True, False, True])
  row_a, _, sd_a = _condition_draws(_rdms(rng, 3, 7), brain, 60, valid_N=valid)
  row_b, _, sd_b = _condition_draws(_rdms(rng, 3, 7), brain, 60)
  assert np.isnan(sd_a[0][1]) and np.isnan(sd_a[1][1]).all() and np.isfinite(sd_b[1]).all()
  out = tlb.difference_table(*_contrast(row_a, row_b, sd_a, sd_b)).iloc[0]
  assert out.n_seeds == 2 and out.n_undefined == 0
  np.testing.assert_allclose(out["diff"], np.mean((sd_a[0] - sd_b[0])[valid]))


@pytest.fixture(scope="module")
def tiny_wd(tmp_path_factory, synthetic_dir):
  from tests.report.conftest import tiny_workdir_path

  return tiny_workdir_path(tmp_path_factory, synthetic_dir)


def test_tiny_run_rows_pair_the_stimulus_bootstrap_and_match_the_sign_flip_mean(tiny_wd):
  res = tiny_wd / "results"
  two = pd.read_csv(res / "two_level_bootstrap.csv")
  stim = pd.read_csv(res / "bootstrap_differences.csv")
  assert list(two.columns) == tlb.COLUMNS and (two.generalises_over == "seeds and stimuli").all()
  key = ["contrast", "rule_a", "epoch_a", "rule_b", "epoch_b", "roi", "layer", "resolution", "arm", "pairs"]
  pd.testing.assert_frame_equal(two[key], stim[key])
  assert (two.n_seeds == 5).all() and (two.ci_lo <= two.ci_hi).all()
  flip = pd.read_csv(res / "tests_vs_untrained.csv")
  head = two[(two.contrast == "vs_untrained") & (two.pairs == "all") & (two.arm == "native")]
  got = head.set_index(["rule_a", "roi", "layer", "epoch_a"])["diff"]
  want = flip.set_index(["rule_a", "roi", "layer", "epoch_a"]).mean_diff
  np.testing.assert_allclose(got.loc[want.index], want, atol=1e-6)
