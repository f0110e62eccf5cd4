"""Sign-flip tables against an independent NumPy enumeration; attainable floors; FDR; honest claims in summary.md."""

import itertools
import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests

from leut.report import families, seed_stats
from tests.report.test_report_edge_cases import fake_workdir


def enumerate_p(d, alternative):
  """Exact sign-flip p by listing all 2^N sign vectors (float64, same 1e-6 relative tie tolerance)."""
  d = np.asarray(d, np.float64)
  n = len(d)
  signs = np.array(list(itertools.product([1.0, -1.0], repeat=n)))
  null = signs @ d / n
  obs = d.mean()
  tol = 1e-6 * max(np.abs(d).max(), 1e-30)
  if alternative == "greater":
    return np.mean(null >= obs - tol)
  if alternative == "less":
    return np.mean(null <= obs + tol)
  return np.mean(np.abs(null) >= abs(obs) - tol)


def per_seed(wd):
  """Independent reduction of rsa.csv: headline condition, mean over subjects per (rule, epoch, layer, roi, seed)."""
  cfg = json.loads((wd / "config.json").read_text())
  rsa = pd.read_csv(wd / "results" / "rsa.csv")
  rsa = rsa[
    (rsa.resolution == cfg["eval"]["resolutions"][0])
    & (rsa.arm == "native")
    & (rsa.pairs == "all")
    & (rsa.subject != "mean")
  ]
  return rsa.groupby(["rule", "epoch", "layer", "roi", "seed"]).rho.mean()


def values_for(row, ps):
  seeds = sorted(ps.index.get_level_values("seed").unique())
  get = lambda rule, epoch: np.array([ps[(rule, epoch, row.layer, row.roi, s)] for s in seeds])  # noqa: E731
  if row.family == "trend":
    epochs = sorted(e for e in ps.loc[row.rule_a].index.get_level_values("epoch").unique() if e >= 1)
    rho = np.stack([get(row.rule_a, e) for e in epochs])
    return np.array([sps.spearmanr(epochs, rho[:, i])[0] for i in range(len(seeds))])
  return get(row.rule_a, row.epoch_a) - get(row.rule_b, row.epoch_b)


@pytest.mark.parametrize("which", ["tiny", "rich"])
def test_test_tables_equal_an_independent_enumeration(which, tiny_workdir, rich_workdir):
  wd = tiny_workdir if which == "tiny" else rich_workdir
  ps = per_seed(wd)
  n_rows = 0
  for fam in families.FAMILIES:
    df = pd.read_csv(wd / "results" / f"tests_{fam}.csv")
    for _, row in df.iterrows():
      v = values_for(row, ps)
      assert row.n_seeds == len(v) == 5
      np.testing.assert_allclose(row.mean_diff, v.mean(), atol=1e-9)
      assert row.p == pytest.approx(enumerate_p(v, row.alternative), abs=1e-9), (fam, row.roi)
      assert row.p_floor == (2 if row.alternative == "two-sided" else 1) / 32
      assert row.floored == (row.p <= row.p_floor + 1e-12)
      sd = v.std(ddof=1)
      if sd > 1e-9:
        assert row.d == pytest.approx(v.mean() / sd, rel=1e-4)
      n_rows += 1
    if len(df) and fam not in families.VIEWS:  # a view's p_fdr is its family's (next test)
      np.testing.assert_allclose(df.p_fdr, multipletests(df.p, method="fdr_bh")[1], rtol=1e-5)
  assert n_rows >= (8 if which == "tiny" else 24)  # rich: 8 vs_untrained, 4 between, 8 epoch1_vs_0, 4 views


def test_dynamics_families_also_share_one_fdr(rich_workdir, tmp_path, tiny_workdir):
  four_epochs = fake_workdir(
    tmp_path / "wd", tiny_workdir, rules=("untrained", "backprop"), seeds=5, epochs=(0, 1, 2, 3)
  )
  for wd in (rich_workdir, four_epochs):
    dyn = pd.concat([pd.read_csv(wd / "results" / f"tests_{f}.csv") for f in families.DYNAMICS])
    dyn = dyn[dyn.p.notna()]
    assert set(dyn.family) == ({"epoch1_vs_0", "trend"} if wd == four_epochs else {"epoch1_vs_0"})
    np.testing.assert_allclose(
      dyn.p_fdr_dynamics.astype(float), multipletests(dyn.p.astype(float), method="fdr_bh")[1], rtol=1e-5
    )


def test_vs_backprop_is_a_view_of_between_rules_with_one_adjusted_p(rich_workdir):
  """Each test has one adjusted p: the vs_backprop rows are between_rules rows, same p and same p_fdr."""
  between = pd.read_csv(rich_workdir / "results" / "tests_between_rules.csv")
  view = pd.read_csv(rich_workdir / "results" / "tests_vs_backprop.csv")
  assert len(view) and (view.rule_b == "backprop").all() and (view.family == "between_rules").all()
  assert not ((between.rule_a == "backprop").any())  # backprop is always the reference, rule_b
  keys = ["rule_a", "rule_b", "roi"]
  merged = view.merge(between, on=keys, suffixes=("", "_between"), validate="one_to_one")
  assert len(merged) == len(view) == (between.rule_b == "backprop").sum()
  for col in ("p", "p_fdr", "mean_diff", "n_seeds"):
    np.testing.assert_array_equal(merged[col], merged[f"{col}_between"])
  assert "p_fdr_dynamics" not in view.columns
  text = (rich_workdir / "summary.md").read_text()
  assert "These are the `between_rules` tests with rule_b = backprop, not new ones" in text


def test_five_seeds_all_agreeing_is_floored_at_one_32nd():
  d = np.array([[0.1, 0.2, 0.05, 0.3, 0.01], [0.1, -0.2, 0.05, 0.3, 0.01]])
  one = seed_stats.sign_flip(d, "greater")
  assert one.p[0] == 1 / 32 and one.p_floor[0] == 1 / 32 and one.floored[0]
  assert one.p[1] == pytest.approx(enumerate_p(d[1], "greater")) and not one.floored[1]
  two = seed_stats.sign_flip(d, "two-sided")
  assert two.p[0] == 2 / 32 and two.floored[0] and two.method[0] == "exact"


def test_missing_seeds_shrink_the_count_and_the_floor():
  d = np.array([[0.1, 0.2, np.nan, 0.3, 0.2]])
  r = seed_stats.sign_flip(d, "greater")
  assert r.n_seeds[0] == 4 and r.p[0] == 1 / 16 and r.p_floor[0] == 1 / 16 and r.floored[0]


def test_32_seeds_use_monte_carlo_and_report_its_floor():
  d = np.abs(np.random.default_rng(0).normal(size=(1, 32))) + 0.1
  r = seed_stats.sign_flip(d, "greater", n_mc=2000)
  assert r.method[0] == "monte_carlo"
  assert r.p_floor[0] == pytest.approx(1 / 2001) and r.p[0] == pytest.approx(1 / 2001) and r.floored[0]
  assert seed_stats.p_floor(32, "greater", n_mc=100_000) == pytest.approx(1 / 100_001)
  assert seed_stats.p_floor(20, "greater") == 2.0**-20


def test_summary_says_when_p_is_floored_by_the_seed_count(tiny_workdir, rich_workdir):
  rich = (rich_workdir / "summary.md").read_text()
  # ground-truth check (b): backprop fc1-IT raised in 5/5 seeds -> one-sided p = 1/32, the floor
  assert "p = 0.0312 is the smallest attainable one-sided p with 5 seeds" in rich
  gt = pd.read_csv(rich_workdir / "results" / "ground_truth.csv").set_index("check")
  assert gt.loc["b", "floored"] and gt.loc["b", "p_floor"] == 1 / 32
  for wd in (tiny_workdir, rich_workdir):
    text = (wd / "summary.md").read_text()
    assert "p = 0.0625 is the smallest attainable two-sided p with 5 seeds" in text


def test_trend_family_is_a_test_over_seeds_with_the_descriptive_spearman_beside_it(tmp_path, tiny_workdir):
  wd = fake_workdir(tmp_path / "wd", tiny_workdir, rules=("untrained", "backprop"), seeds=5, epochs=(0, 1, 2, 3))
  tr = pd.read_csv(wd / "results" / "tests_trend.csv")
  assert {"rho_seed_mean_trend", "n_epochs"} <= set(tr.columns)
  assert len(tr) == 2 and (tr.epoch_a == 1).all() and (tr.epoch_b == 3).all() and (tr.n_epochs == 3).all()
  ps = per_seed(wd)
  for _, row in tr.iterrows():
    v = values_for(row, ps)
    assert row.n_seeds == len(v) == 5
    assert row.p == pytest.approx(enumerate_p(v, row.alternative), abs=1e-9)
  assert "No trend test" not in (wd / "summary.md").read_text()


def test_a_trend_needs_three_epochs(tmp_path, tiny_workdir):
  wd = fake_workdir(tmp_path / "wd", tiny_workdir, rules=("untrained", "backprop"), seeds=5, epochs=(0, 1, 2))
  assert not len(pd.read_csv(wd / "results" / "tests_trend.csv"))  # two epochs >= 1: no test (was one)
  text = (wd / "summary.md").read_text()
  assert "- No trend test for backprop: its milestones ≥ 1 are [1, 2], and a trend needs at least 3" in text
