"""Every public leut.rsa function refuses non-finite input (a clear error) or returns NaN, never a finite number."""

import jax
import numpy as np
import pytest

import leut.rsa as rsa
from tests.rsa.random_rdms import symmetric as _sym

S = 8


def _inputs():
  rng = np.random.default_rng(0)
  good = np.stack([_sym(rng, S) for _ in range(3)])  # three RDMs
  bad = good.copy()
  bad[0, 1, 5] = bad[0, 5, 1] = np.nan
  return good, bad


def _all_nan(x):
  return bool(np.all(np.isnan(np.asarray(x, np.float64))))


def test_every_public_name_is_covered_here():
  """A new public function must join this file's policy checks (or the list of functions that take no numbers)."""
  covered = {
    "rank_average",
    "centred_unit",
    "compare",
    "mean_rdm_score",
    "mean_subject_score",
    "bootstrap",
    "bootstrap_scores",
    "bootstrap_p",
    "percentile_ci",
    "permutation_test",
    "p_value",
    "sign_flip_test",
    "fdr_bh",
    "holm",
    "cohens_d",
    "noise_ceiling",
    "partial_compare",
    "partial_spearman",
    "rank_residuals",
    "cross_validated_best_layer",
    "rdm",
    "check_features",
    "block_clean",
    "pixel_rdm",
    "luminance_rdm",
    "mean_rgb_rdm",
    "color_histogram_rdm",
    "gabor_energy_rdm",
    "cka",
    "cka_from_grams",
    "centred_gram",
  }
  no_numbers = {  # shapes, labels, keys, masks, errors and result types
    "DegenerateFeaturesError",
    "NonFiniteFeaturesError",
    "NonFiniteInputError",
    "BootstrapResult",
    "PermutationResult",
    "NoiseCeiling",
    "BestLayerResult",
    "constant_rows",
    "non_finite_rows",
    "n_stimuli",
    "squareform",
    "upper_tri",
    "cross_run_mask",
    "resample_indices",
    "permutations",
    "min_defined_draws",
    "n_defined",
  }
  assert set(rsa.__all__) == covered | no_numbers


def test_ranks_comparisons_and_aggregates_return_nan():
  good, bad = _inputs()
  assert _all_nan(rsa.rank_average(bad[0][np.triu_indices(S, 1)]))
  assert _all_nan(rsa.centred_unit(bad[0][np.triu_indices(S, 1)]))
  for method in ("spearman", "pearson", "rho_a", "kendall_tau_a"):
    assert _all_nan(rsa.compare(bad[0], good[1], method)), method
    assert _all_nan(rsa.mean_rdm_score(good[0], bad, method)), method
    per = np.asarray(rsa.mean_subject_score(good[:2], bad, method, return_per_subject=True)[1])
    assert np.isnan(per[:, 0]).all() and np.isfinite(per[:, 1:]).all(), method
    assert _all_nan(rsa.mean_subject_score(good[:2], bad, method))
  feats = np.random.default_rng(1).normal(size=(S, 6))
  feats_bad = feats.copy()
  feats_bad[2, 3] = np.nan
  for debiased in (False, True):  # one non-finite feature makes CKA undefined, whichever side it is on
    assert _all_nan(rsa.cka(feats_bad, feats, debiased=debiased)) and _all_nan(rsa.cka(feats, feats_bad, debiased))
    gram_bad, gram = rsa.centred_gram(feats_bad), rsa.centred_gram(feats)
    assert not np.isfinite(np.asarray(gram_bad)).all()  # the Gram matrix carries the NaN on
    assert _all_nan(rsa.cka_from_grams(gram_bad, gram, debiased)) and _all_nan(rsa.cka_from_grams(gram, gram_bad))
    assert _all_nan(rsa.cka_from_grams(np.zeros((S, S)), gram, debiased))  # constant features: no self-HSIC


def test_bootstrap_refuses_and_its_helpers_skip_undefined_draws():
  good, bad = _inputs()
  with pytest.raises(rsa.NonFiniteInputError):
    rsa.bootstrap(bad, good, key=jax.random.key(0), n_boot=4)
  iu = np.triu_indices(S, 1)
  idx = np.random.default_rng(1).integers(0, S, (4, S))
  assert _all_nan(rsa.bootstrap_scores(bad[:1, iu[0], iu[1]], good[:, iu[0], iu[1]], idx, np.ones(len(iu[0]))))
  assert _all_nan(rsa.bootstrap_p(np.full(50, np.nan)))
  assert all(_all_nan(x) for x in rsa.percentile_ci(np.full(50, np.nan)))


def test_permutation_and_sign_flip_p_values_are_nan():
  good, bad = _inputs()
  res = rsa.permutation_test(bad[0], good[1], key=jax.random.key(0), n_perm=20)
  assert _all_nan(res.observed) and _all_nan(res.p)
  res = rsa.permutation_test(good[0], bad[0], good[2], key=jax.random.key(0), n_perm=20)  # NaN brain, paired
  assert _all_nan(res.observed) and _all_nan(res.p)
  for method in ("pearson", "spearman"):
    res = rsa.permutation_test(good[0], good[1], bad[0], key=jax.random.key(0), n_perm=20, method=method)
    assert _all_nan(res.p)
  assert _all_nan(rsa.p_value(np.nan, np.zeros(10)))
  for alternative in ("greater", "less", "two-sided"):
    p = np.asarray(rsa.sign_flip_test(np.array([[0.1, 0.2, np.nan, 0.3], [0.1, 0.2, 0.3, 0.4]]), alternative))
    assert np.isnan(p[0]) and p[1] > 0, alternative  # was p = 0 for the NaN row
    p = rsa.sign_flip_test(np.array([0.1, np.inf] + [0.2] * 22), alternative, key=jax.random.key(0), n_mc=100)
    assert _all_nan(p), alternative  # Monte Carlo branch too


def test_multiple_comparisons_and_effect_sizes_return_nan():
  p = np.array([0.01, np.nan, 0.04])
  assert _all_nan(rsa.fdr_bh(p)) and _all_nan(rsa.holm(p))
  assert np.isfinite(np.asarray(rsa.fdr_bh(np.array([[0.01, 0.2], [0.5, 0.03]])))).all()
  assert _all_nan(rsa.cohens_d(np.array([0.1, np.nan, 0.3])))
  assert _all_nan(rsa.cohens_d(np.array([0.1, 0.2]), np.array([0.1, np.inf]), paired=False))


def test_noise_ceiling_partial_rsa_and_best_layer_return_nan():
  good, bad = _inputs()
  nc = rsa.noise_ceiling(bad, key=jax.random.key(0), n_perm=5)
  assert _all_nan(nc.lower) and _all_nan(nc.upper) and _all_nan(nc.p_lower)
  for fn in (rsa.partial_compare, rsa.partial_spearman):
    assert _all_nan(fn(bad[0], good[1], good[2])), fn.__name__
    assert _all_nan(fn(good[1], good[2], bad[0])), fn.__name__  # a NaN control
  assert _all_nan(rsa.rank_residuals(bad[0][np.triu_indices(S, 1)], good[1][np.triu_indices(S, 1)]))
  layers = np.stack([good[0], bad[0], good[2]])
  res = rsa.cross_validated_best_layer(layers, good[1], key=jax.random.key(0), n_splits=2)
  assert _all_nan(res.score) and _all_nan(res.naive_max)


def test_rdms_of_non_finite_features_are_nan_and_checked_features_raise():
  rng = np.random.default_rng(2)
  feats = rng.normal(size=(6, 10)).astype(np.float32)
  feats[2, 4] = np.nan
  feats[4, 0] = np.inf
  for metric in ("correlation", "cosine", "euclidean"):
    d = np.asarray(rsa.rdm(feats, metric))
    off = ~np.eye(6, dtype=bool)
    bad = np.zeros(6, bool)
    bad[[2, 4]] = True
    undefined = (bad[:, None] | bad[None, :]) & off
    assert np.isnan(d[undefined]).all() and np.isfinite(d[~undefined]).all(), metric
    clean = np.asarray(rsa.rdm(feats[~bad], metric))  # the other distances do not depend on the bad rows
    np.testing.assert_allclose(d[np.ix_(~bad, ~bad)], clean, atol=1e-5)
  assert np.asarray(rsa.non_finite_rows(feats)).tolist() == [False, False, True, False, True, False]
  assert not np.asarray(rsa.constant_rows(feats))[2]
  with pytest.raises(rsa.NonFiniteFeaturesError, match=r"fc1/bp: 2 of 6 stimuli have NaN/inf features"):
    rsa.check_features(feats, name="fc1/bp")
  # the same holds for the images the control RDMs are built from, and for block cleaning
  img = rng.random((4, 8, 8, 3)).astype(np.float32)
  img[1, 2, 3, 0] = np.nan
  for fn in (rsa.pixel_rdm, rsa.luminance_rdm, rsa.mean_rgb_rdm, rsa.color_histogram_rdm, rsa.gabor_energy_rdm):
    d = np.asarray(fn(img))
    assert np.isnan(d[1, [0, 2, 3]]).all() and np.isfinite(d[np.ix_([0, 2, 3], [0, 2, 3])]).all(), fn.__name__
  good, bad = _inputs()
  runs = np.array([0, 0, 1, 1, 2, 2, 0, 1])  # the NaN pair (1, 5) lies in run block {0, 2}
  cleaned = np.asarray(rsa.block_clean(bad[0], runs))
  in_block = (
    np.asarray(rsa.pairs.run_block_ids(runs))
    == rsa.pairs.run_block_ids(runs)[np.argmax((np.triu_indices(S, 1)[0] == 1) & (np.triu_indices(S, 1)[1] == 5))]
  )
  assert np.isnan(cleaned[in_block]).all() and np.isfinite(cleaned[~in_block]).all()
