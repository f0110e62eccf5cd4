"""Model-to-model analyses: Spearman kernels against scipy, the three analyses against a scipy loop (from the RDMs and
from the scoring kernel's ranks, which are the collector's own bit for bit), and the rows of the tiny run (every
rule's epoch 0 is the same network, so its rule-vs-rule similarity is 1)."""

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from leut import evaluate, rsa
from leut.scoring import model_similarity as ms
from tests.rsa.random_rdms import symmetric


def _rdm_vectors(rng, n, p, ties=False):
  v = rng.normal(size=(n, p))
  return (np.round(v, 1) if ties else v).astype(np.float32)


def test_spearman_matrix_equals_scipy_with_ties():
  rng = np.random.default_rng(0)
  a, b = _rdm_vectors(rng, 3, 28, ties=True), _rdm_vectors(rng, 2, 28, ties=True)
  got = np.asarray(ms.spearman_matrix(ms.standardised_ranks(a), ms.standardised_ranks(b)))
  want = np.array([[spearmanr(x.astype(np.float64), y.astype(np.float64)).statistic for y in b] for x in a])
  np.testing.assert_allclose(got, want, atol=1e-5)


def test_a_constant_rdm_has_no_correlation():
  v = np.ones((1, 10), np.float32)
  assert np.isnan(np.asarray(ms.spearman_matrix(ms.standardised_ranks(v), ms.standardised_ranks(v)))).all()


def _stream(rng, rules=("a", "b"), epochs=(0, 1), n=4, p=45):
  """{(rule, epoch): NxP} RDM vectors; rule b's epoch 0 equals rule a's (the shared initialisation)."""
  out = {}
  for rule in rules:
    for e in epochs:
      out[(rule, e)] = out[(rules[0], 0)] if e == 0 and rule != rules[0] else _rdm_vectors(rng, n, p)
  return out


def _rho(x, y):
  return spearmanr(np.float64(x), np.float64(y)).statistic


def _all_pairs_targets(rng, s):
  """`evaluate.brain_targets` of one random brain RDM on every stimulus pair (the 'all' pair set)."""
  brain_1x1xSxS = symmetric(rng, s)[None, None]
  return evaluate.brain_targets(jnp.asarray(brain_1x1xSxS), jnp.ones((s, s), bool))


def _scoring_kernel_ranks(rdm_NxP):
  """The standardised ranks that the evaluation hands the collector: `score_and_rank_rdms` on the all-pairs set."""
  targets = _all_pairs_targets(np.random.default_rng(5), rsa.n_stimuli(rdm_NxP.shape[-1]))
  return evaluate.score_and_rank_rdms(jnp.asarray(rdm_NxP), targets)[2]


@pytest.mark.parametrize("given", ["rdms", "ranks from the scoring kernel"])
def test_the_three_analyses_equal_a_scipy_loop_and_leave_invalid_seeds_out(given):
  rng = np.random.default_rng(1)
  rdms = _stream(rng)
  invalid = {("b", 1): np.array([False, False, True, False])}  # seed 2 of b at epoch 1: NaN in rsa.csv
  sim = ms.ModelSimilarity(rules=["a", "b"])
  for (rule, e), v in rdms.items():
    rdm_or_ranks = dict(model_NxP=v) if given == "rdms" else dict(z_NxP=_scoring_kernel_ranks(v))
    sim.add(
      rule=rule,
      epoch=e,
      layer="conv1",
      resolution=32,
      arm="native",
      invalid_N=invalid.get((rule, e)),
      keep=True,
      **rdm_or_ranks,
    )
  t = sim.table().set_index(["analysis", "rule_a", "rule_b", "epoch_a", "seed_pairs"])
  N = 4
  ok_b1 = [n for n in range(N) if n != 2]
  drift_b1 = [_rho(rdms[("b", 1)][n], rdms[("b", 0)][n]) for n in ok_b1]
  row = t.loc[("drift_from_epoch0", "b", "b", 1, "same_seed")]
  np.testing.assert_allclose(row.rho, np.mean(drift_b1), atol=1e-5)
  np.testing.assert_allclose(row.rho_sd, np.std(drift_b1, ddof=1), atol=1e-5)
  np.testing.assert_allclose(row.dissimilarity, 1 - np.mean(drift_b1), atol=1e-5)
  assert row.n_pairs == 3 and row.epoch_b == 0
  np.testing.assert_allclose(t.loc[("drift_from_epoch0", "a", "a", 0, "same_seed")].rho, 1.0, atol=1e-5)
  inter = [_rho(rdms[("a", 1)][n], rdms[("a", 1)][m]) for n in range(N) for m in range(n + 1, N)]
  row = t.loc[("inter_seed", "a", "a", 1, "different_seeds")]
  np.testing.assert_allclose(row.rho, np.mean(inter), atol=1e-5)
  assert row.n_pairs == 6
  a1, b1 = rdms[("a", 1)], rdms[("b", 1)]
  diff = [_rho(a1[n], b1[m]) for n in range(N) for m in ok_b1 if n != m]
  same = [_rho(a1[n], b1[n]) for n in ok_b1]
  np.testing.assert_allclose(t.loc[("rule_vs_rule", "a", "b", 1, "different_seeds")].rho, np.mean(diff), atol=1e-5)
  np.testing.assert_allclose(t.loc[("rule_vs_rule", "a", "b", 1, "same_seed")].rho, np.mean(same), atol=1e-5)
  assert t.loc[("rule_vs_rule", "a", "b", 1, "different_seeds")].n_pairs == len(diff) == 9
  # The shared initialisation: rule vs rule at epoch 0 is 1 for the same seed and the inter-seed value otherwise.
  np.testing.assert_allclose(t.loc[("rule_vs_rule", "a", "b", 0, "same_seed")].rho, 1.0, atol=1e-5)
  np.testing.assert_allclose(
    t.loc[("rule_vs_rule", "a", "b", 0, "different_seeds")].rho,
    t.loc[("inter_seed", "a", "a", 0, "different_seeds")].rho,
  )


def test_a_condition_without_a_defined_seed_pair_is_nan_with_a_note():
  sim = ms.ModelSimilarity(rules=["a"])
  v = np.random.default_rng(2).normal(size=(2, 10)).astype(np.float32)
  sim.add(rule="a", epoch=0, layer="l", resolution=32, arm="native", model_NxP=v, invalid_N=np.array([True, False]))
  t = sim.table().set_index("analysis")
  assert np.isnan(t.loc["inter_seed", "rho"]) and t.loc["inter_seed", "n_pairs"] == 0
  assert t.loc["inter_seed", "note"] == ms.NO_PAIR
  assert t.loc["drift_from_epoch0", "n_pairs"] == 1 and t.loc["drift_from_epoch0", "note"] == ""


def _awkward_rdms(rng, s):
  """5 RDM vectors of s stimuli: ties, a constant one, one with a NaN, one with an inf, a plain one."""
  v = np.stack([symmetric(rng, s, decimals=d)[np.triu_indices(s, 1)] for d in (0, 1, 1, 1, None)])
  v[1] = 0.5
  v[2, 3] = np.nan
  v[3, -1] = np.inf
  return v


@pytest.mark.parametrize("s", [10, 60])  # P = 45 (a plain cumulative sum) and 1,770 (the blocked one)
def test_the_scoring_kernels_all_pair_ranks_are_the_collectors_bit_for_bit(s):
  """centred_unit(rank_average(v, w), w) with every weight 1 is centred_unit(rank_average(v)) exactly, undefined rows
  (constant, NaN, inf) included; and the scores that come with the ranks are `score_rdms`'s exactly."""
  rng = np.random.default_rng(3)
  v = _awkward_rdms(rng, s)
  targets = _all_pairs_targets(rng, s)
  rho_NxRxJ, rho_mean_NxR, z_NxP = evaluate.score_and_rank_rdms(jnp.asarray(v), targets)
  want = np.asarray(ms.standardised_ranks(jnp.asarray(v)))
  assert np.isnan(want[1:4]).all() and np.isfinite(want[[0, 4]]).all()
  np.testing.assert_array_equal(np.asarray(z_NxP), want)
  for got, plain in zip((rho_NxRxJ, rho_mean_NxR), evaluate.score_rdms(jnp.asarray(v), targets), strict=True):
    np.testing.assert_array_equal(np.asarray(got), np.asarray(plain))


def test_the_all_pairs_set_is_the_one_whose_weights_are_all_one():
  rng = np.random.default_rng(4)
  s = 8
  cross = np.ones((s, s), bool)
  cross[:2, :2] = False  # as a cross-run mask: the pairs within one run left out
  targets = {
    name: evaluate.brain_targets(jnp.asarray(symmetric(rng, s)[None, None]), jnp.asarray(mask))
    for name, mask in (("cross_run", cross), ("all", np.ones((s, s), bool)))
  }
  assert evaluate.all_pairs_set(targets) == "all"
  assert evaluate.all_pairs_set({"cross_run": targets["cross_run"]}) is None


def test_passing_the_ranks_gives_the_rows_of_passing_the_rdms():
  rng = np.random.default_rng(6)
  rdms = _stream(rng)
  invalid = {("a", 1): np.array([True, False, False, False])}
  tables = []
  for given in ("rdms", "ranks"):
    sim = ms.ModelSimilarity(rules=["a", "b"])
    for (rule, e), v in rdms.items():
      rdm_or_ranks = dict(model_NxP=v) if given == "rdms" else dict(z_NxP=ms.standardised_ranks(v))
      sim.add(
        rule=rule,
        epoch=e,
        layer="l",
        resolution=32,
        arm="native",
        invalid_N=invalid.get((rule, e)),
        keep=True,
        **rdm_or_ranks,
      )
    tables.append(sim.table())
  assert len(tables[0]) == 2 * 2 * 2 + 2 * 2  # drift and inter-seed per rule and epoch; rule vs rule per epoch
  pd.testing.assert_frame_equal(tables[1], tables[0])


@pytest.mark.parametrize("given", [{}, {"model_NxP": np.zeros((2, 3)), "z_NxP": np.zeros((2, 3))}])
def test_add_takes_either_the_rdms_or_their_ranks(given):
  with pytest.raises(ValueError, match="either model_NxP .* or z_NxP"):
    ms.ModelSimilarity(rules=["a"]).add(rule="a", epoch=0, layer="l", resolution=32, arm="native", **given)


@pytest.fixture(scope="module")
def tiny_wd(tmp_path_factory, synthetic_dir):
  from tests.report.conftest import tiny_workdir_path

  return tiny_workdir_path(tmp_path_factory, synthetic_dir)


def test_tiny_run_writes_every_analysis_with_the_shared_initialisation_at_one(tiny_wd):
  t = pd.read_csv(tiny_wd / "results" / "model_similarity.csv")
  assert list(t.columns) == ms.COLUMNS
  layers = ["conv1", "conv2", "conv3", "fc1"]
  drift = t[(t.analysis == "drift_from_epoch0") & (t.rule_a == "backprop")]
  assert sorted(drift.epoch_a.unique()) == [0, 1, 2] and sorted(drift.layer.unique()) == layers
  assert (drift.n_pairs == 5).all()
  np.testing.assert_allclose(drift[drift.epoch_a == 0].rho, 1.0, atol=1e-5)
  assert (drift[drift.epoch_a == 2].dissimilarity > 0).all()  # training moved every layer
  inter = t[t.analysis == "inter_seed"]
  assert (inter.n_pairs == 10).all() and inter.rho.between(-1, 1).all()
  rvr = t[t.analysis == "rule_vs_rule"].set_index(["layer", "seed_pairs"])
  assert set(rvr.epoch_a) == {0} and set(rvr.rule_a) == {"untrained"} and set(rvr.rule_b) == {"backprop"}
  np.testing.assert_allclose(rvr.xs("same_seed", level="seed_pairs").rho, 1.0, atol=1e-5)
  i0 = inter[(inter.rule_a == "untrained")].set_index("layer").rho
  np.testing.assert_allclose(rvr.xs("different_seeds", level="seed_pairs").rho.loc[i0.index], i0, atol=1e-6)
