"""Stimulus bootstrap of CKA and encoding scores against independent float64 computations on hidden tiny cases:
each draw recomputed from the resampled stimuli themselves (features and responses indexed by the draw, CKA by
explicit centring matrices and by the U-statistic over index quadruples; encoding by scikit-learn's RidgeCV
predictions and NumPy's Pearson r on the expanded held-out resample), averaged over seeds and subjects."""

import itertools

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import RidgeCV

from leut.data.responses import ResponseData
from leut.scoring import encoding_scores, metric_bootstrap
from tests.scoring.tiny_responses import WHERE, tiny_case

HEADLINE = {"V1": "conv1", "IT": "fc1"}


def _centred(x):
  n = len(x)
  h = np.eye(n) - np.ones((n, n)) / n
  return h @ x @ x.T @ h


def _resampled_cka(x, y, idx, debiased):
  """CKA of the resample idx with the pairs of copies of a stimulus zeroed like the diagonal (float64 NumPy):
  biased, sum(K * L) / (n - 1)^2 keeping the diagonal; debiased, the U-statistic over index quadruples."""
  n = len(idx)
  k, l = _centred(x[idx]), _centred(y[idx])
  copies = idx[:, None] == idx[None, :]
  zero = copies if debiased else copies & ~np.eye(n, dtype=bool)
  k[zero], l[zero] = 0.0, 0.0
  if debiased:
    i, j, q, r = np.array(list(itertools.permutations(range(n), 4))).T

    def hsic(a, b):
      return np.mean(a[i, j] * b[i, j] + a[i, j] * b[q, r] - 2 * a[i, j] * b[i, q])
  else:

    def hsic(a, b):
      return np.sum(a * b) / (n - 1) ** 2

  return hsic(k, l) / np.sqrt(hsic(k, k) * hsic(l, l))


def _entries(boot, metric):
  return {(e[0]["layer"], e[0]["roi"], e[0].get("estimator")): e for e in boot._rows[metric]}


def test_cka_draws_equal_cka_of_the_resampled_stimuli_with_copies_as_self_pairs():
  feats, resp = tiny_case(seed=3, n_stimuli=8)  # 8 stimuli: 1680 index quadruples for the U-statistic
  boot = metric_bootstrap.MetricBootstrap(n_boot=6, rules=["backprop"])
  boot.add_cka(feats, resp, headline=HEADLINE, invalid_N=np.array([False, False, True]), **WHERE)
  entries = _entries(boot, "cka")
  assert set(entries) == {(HEADLINE[r], r, e) for r in HEADLINE for e in ("biased", "debiased")}
  indices = boot.indices(8)
  everything = np.arange(8)
  for (layer, roi, estimator), (row, draws_D, obs_N, _) in entries.items():
    debiased = estimator == "debiased"
    ys = [resp.select(roi, s).astype(np.float64) for s in ("sub-01", "sub-02")]
    xs = feats[layer][:2].astype(np.float64)  # seed 2 is invalid: left out of every mean
    expected = [np.mean([_resampled_cka(x, y, idx, debiased) for x in xs for y in ys]) for idx in indices]
    np.testing.assert_allclose(draws_D, expected, rtol=2e-4, atol=2e-5)
    point = np.mean([_resampled_cka(x, y, everything, debiased) for x in xs for y in ys])
    np.testing.assert_allclose(row["cka"], point, rtol=2e-4)
    assert np.isnan(obs_N[2]) and row["n_boot"] == 6 and row["readout"] == "mean"


@pytest.mark.parametrize("seed", [0, 1])
def test_cka_draws_centre_on_the_all_stimulus_value_where_plain_copies_would_not(seed):
  """At 24 stimuli and 64 features, copies kept as ordinary pairs push the draws above the all-stimulus CKA (the
  plain resample X[idx], Y[idx]); with copies as self-pairs the interval holds it."""
  rng = np.random.default_rng(seed)
  z = rng.normal(size=(24, 5))
  x = (z @ rng.normal(size=(5, 64)) + 2 * rng.normal(size=(24, 64)))[None].astype(np.float32)
  y = (z @ rng.normal(size=(5, 30)) + 2 * rng.normal(size=(24, 30))).astype(np.float32)
  neuroids = pd.DataFrame({"roi": "IT", "subject": "s1", "neuroid_id": [f"n{i}" for i in range(30)]})
  resp = ResponseData(
    "sim", tuple(f"s{i}" for i in range(24)), tuple("c" * 24), y, neuroids.assign(reliability=0.9), None
  )
  boot = metric_bootstrap.MetricBootstrap(n_boot=200, rules=["backprop"])
  boot.add_cka({"fc1": x}, resp, headline={"IT": "fc1"}, invalid_N=np.zeros(1, bool), **WHERE)
  for row, draws_D, _, _ in boot._rows["cka"]:
    assert row["ci_lo"] < row["cka"] < row["ci_hi"]
    assert abs(np.median(draws_D) - row["cka"]) < 0.25 * (row["ci_hi"] - row["ci_lo"])
  naive = []
  for idx in boot.indices(24)[:100]:
    xs, ys = x[0][idx].astype(np.float64), y[idx].astype(np.float64)
    k, l = _centred(xs), _centred(ys)
    naive.append(np.sum(k * l) / np.sqrt(np.sum(k * k) * np.sum(l * l)))  # biased CKA of the plain resample
  biased = next(r for r, *_ in boot._rows["cka"] if r["estimator"] == "biased")
  assert np.percentile(naive, 2.5) > biased["cka"]  # the plain resample's interval misses the value


def test_a_resample_of_one_distinct_stimulus_is_undefined_and_counted():
  feats, resp = tiny_case(seed=4, n_stimuli=8)
  boot = metric_bootstrap.MetricBootstrap(n_boot=50, rules=["backprop"])
  idx = np.array(boot.indices(8))
  idx[0] = 5  # one draw holds stimulus 5 eight times
  boot._indices[8] = idx
  boot.add_cka(feats, resp, headline={"V1": "conv1"}, invalid_N=np.zeros(3, bool), **WHERE)
  row, draws_D, _, _ = boot._rows["cka"][0]
  assert np.isnan(draws_D[0]) and row["n_undefined"] == np.isnan(draws_D).sum() >= 1
  lo, hi = np.percentile(draws_D[np.isfinite(draws_D)], [2.5, 97.5])
  np.testing.assert_allclose([row["ci_lo"], row["ci_hi"]], [lo, hi], rtol=1e-6)


def _sklearn_held_out(x, y, test_KxS):
  """Held-out predictions (S x T) of RidgeCV fitted on each fold's other stimuli (NumPy float64)."""
  pred = np.full(y.shape, np.nan)
  for test in test_KxS:
    fit = RidgeCV(alphas=encoding_scores.LAMBDAS, alpha_per_target=True).fit(x[~test], y[~test])
    pred[test] = fit.predict(x[test])
  return pred


def test_encoding_draws_equal_pearson_r_of_the_expanded_held_out_resample():
  feats, resp = tiny_case(seed=5, n_stimuli=20)
  boot = metric_bootstrap.MetricBootstrap(n_boot=5, rules=["backprop"])
  rows = encoding_scores.encoding_rows(
    feats, resp, invalid_N=np.zeros(3, bool), seed=0, bootstrap=boot, headline=HEADLINE, **WHERE
  )
  test_KxS = np.asarray(encoding_scores.held_out_folds(resp, 0))
  y = resp.responses_SxN.astype(np.float64)
  reliability = resp.neuroids["reliability"].to_numpy()
  indices = boot.indices(20)
  entries = _entries(boot, "encoding")
  assert set(entries) == {(HEADLINE[r], r, None) for r in HEADLINE}
  table = pd.DataFrame(rows)
  for (layer, roi, _), (row, draws_D, _, _) in entries.items():
    per_seed_sub = []
    for x in feats[layer].astype(np.float64):
      x = x / np.sqrt(((x - x.mean(0)) ** 2).sum() / len(x))
      pred = _sklearn_held_out(x, y, test_KxS)
      for sub in ("sub-01", "sub-02"):
        m = resp.mask(roi, sub) & (reliability > encoding_scores.MIN_CEILING)
        per_draw = []
        for idx in indices:
          r = np.zeros((len(test_KxS), m.sum()))
          for k, test in enumerate(test_KxS):
            drawn = idx[test[idx]]  # the fold's held-out stimuli as drawn, with repeats
            r[k] = [np.corrcoef(pred[drawn, t], y[drawn, t])[0, 1] for t in np.flatnonzero(m)]
          per_draw.append(np.median(r.mean(0) / reliability[m]))
        per_seed_sub.append(per_draw)
    np.testing.assert_allclose(draws_D, np.mean(per_seed_sub, axis=0), rtol=2e-3, atol=2e-4)
    same = table[(table.layer == layer) & (table.roi == roi)]
    np.testing.assert_allclose(row["score"], same.score.mean(), rtol=1e-4, atol=1e-5)  # the encoding.csv score


@pytest.fixture(scope="module")
def two_rule_tables():
  """Bootstrap tables of untrained (epoch 0) and backprop (epoch 1) on the same tiny responses."""
  boot = metric_bootstrap.MetricBootstrap(n_boot=60, rules=["untrained", "backprop"])
  for rule, epoch, seed in (("untrained", 0, 1), ("backprop", 1, 2)):
    feats, _ = tiny_case(seed=seed, n_stimuli=30)
    _, resp = tiny_case(seed=0, n_stimuli=30)  # the same brain; 6 held-out stimuli per fold
    where = {**WHERE, "rule": rule, "epoch": epoch, "step": 10 * epoch}
    boot.add_cka(feats, resp, headline=HEADLINE, invalid_N=np.zeros(3, bool), **where)
    encoding_scores.encoding_rows(
      feats, resp, invalid_N=np.zeros(3, bool), seed=0, bootstrap=boot, headline=HEADLINE, **where
    )
  return boot, boot.tables()


def test_difference_tables_pair_the_draws_of_both_metrics(two_rule_tables):
  boot, tables = two_rule_tables
  assert set(tables) == {f"{m}_{t}" for m in ("cka", "encoding") for t in metric_bootstrap.TABLE_KINDS}
  for metric, value in metric_bootstrap.VALUE.items():
    diffs = tables[f"{metric}_bootstrap_differences"]
    assert (diffs.contrast == "vs_untrained").all() and len(diffs) == len(HEADLINE) * (2 if metric == "cka" else 1)
    by_key = {(e[0]["rule"], e[0]["roi"], e[0].get("estimator")): e for e in boot._rows[metric]}
    for _, d in diffs.iterrows():
      est = d.get("estimator") if metric == "cka" else None
      a, b = by_key[("backprop", d.roi, est)], by_key[("untrained", d.roi, est)]
      delta = a[1] - b[1]
      np.testing.assert_allclose(d["diff"], a[0][value] - b[0][value], rtol=1e-9)
      np.testing.assert_allclose([d.ci_lo, d.ci_hi], np.nanpercentile(delta, [2.5, 97.5]), rtol=1e-6)
      assert d.n_undefined == np.isnan(delta).sum() < 20
      assert d[f"{value}_a"] == a[0][value]
    two = tables[f"{metric}_two_level_bootstrap"]
    assert len(two) == len(diffs) and (two.generalises_over == "seeds and stimuli").all()
    assert (two.n_seeds == 3).all() and two[["ci_lo", "ci_hi"]].notna().all().all(), two


def test_resampled_fold_r_does_not_depend_on_the_target_chunk():
  rng = np.random.default_rng(9)
  pred, y = rng.normal(size=(20, 7)), rng.normal(size=(20, 7))
  y[:, 4] = 1.5  # a constant target: undefined in every resample
  test_KxS = np.zeros((4, 20), bool)
  test_KxS[np.arange(20) % 4, np.arange(20)] = True
  idx, ok = metric_bootstrap._fold_members(test_KxS)
  counts = metric_bootstrap.resample_counts(rng.integers(0, 20, (30, 20)), 20)
  whole = metric_bootstrap.fold_r(pred, y, counts, idx, ok)
  chunked = metric_bootstrap.fold_r(pred, y, counts, idx, ok, chunk=3)  # 3 + 3 + 1 (padded)
  np.testing.assert_array_equal(np.isnan(whole), np.isnan(chunked))
  np.testing.assert_allclose(chunked, whole, rtol=1e-12)
  assert np.isnan(whole[:, 4]).all() and np.isfinite(whole[:, :4]).mean() > 0.5
