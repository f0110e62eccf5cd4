"""Rules compared at matched held-out accuracy: the interpolation against np.interp and a hand-computed path,
undefined where a target is not reached, and the report's rows on a CSV-only workdir built from the tiny run."""

import itertools
import json
import shutil

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.multitest import multipletests

from leut import cli
from leut.report import accuracy_matched, tables, write_report
from tests.report.test_report_outputs import check_summary_against_csvs

SEEDS = 5


def test_first_crossing_equals_np_interp_on_a_rising_path():
  rng = np.random.default_rng(0)
  acc_E = np.cumsum(rng.uniform(0.01, 0.2, 6))  # strictly rising accuracy over 6 milestones
  rho_E = rng.normal(0, 0.1, 6)
  targets = np.concatenate([acc_E, rng.uniform(acc_E[0], acc_E[-1], 20)])  # milestones themselves and in between
  rho_T, reached_T = accuracy_matched.first_crossing(acc_E, rho_E, targets)
  assert reached_T.all()
  np.testing.assert_allclose(rho_T, np.interp(targets, acc_E, rho_E), rtol=0, atol=1e-12)


def test_first_crossing_takes_the_first_segment_that_reaches_the_target():
  # accuracy rises to 0.5, dips to 0.3, rises to 0.6: 0.4 is first reached between milestones 0 and 1
  acc_E, rho_E = [0.1, 0.5, 0.3, 0.6], [0.0, 1.0, 2.0, 3.0]
  rho_T, reached_T = accuracy_matched.first_crossing(acc_E, rho_E, [0.4, 0.55, 0.3])
  assert reached_T.all()
  # 0.4: 0 + (0.4-0.1)/(0.5-0.1) * 1 = 0.75; 0.55: only the last segment, 2 + (0.55-0.3)/(0.6-0.3) = 2.8333;
  # 0.3: first on segment 0, (0.3-0.1)/0.4 = 0.5 (not milestone 2's rho of 2)
  np.testing.assert_allclose(rho_T, [0.75, 2 + 0.25 / 0.3, 0.5], rtol=0, atol=1e-12)


def test_a_target_not_reached_is_undefined_never_extrapolated():
  acc_E, rho_E = [0.2, 0.4, np.nan, 0.5], [0.1, 0.3, 9.0, 0.2]
  rho_T, reached_T = accuracy_matched.first_crossing(acc_E, rho_E, [0.19, 0.51, 0.45])
  assert reached_T.tolist() == [False, False, True]
  assert np.isnan(rho_T[:2]).all()
  # the milestone with an undefined accuracy is left out of the path: 0.45 lies between 0.4 and 0.5
  assert rho_T[2] == pytest.approx(0.3 + 0.5 * (0.2 - 0.3))
  # a bracketing rho that is NaN (a diverged seed) gives NaN although the target is reached
  rho_T, reached_T = accuracy_matched.first_crossing([0.2, 0.4], [0.1, np.nan], [0.3])
  assert reached_T.all() and np.isnan(rho_T).all()
  # a target on a milestone takes that milestone's rho, whatever the other end's
  rho_T, _ = accuracy_matched.first_crossing([0.2, 0.4], [np.nan, 0.3], [0.4])
  assert rho_T.tolist() == [0.3]


# ---- the report on a CSV-only workdir with designed accuracies ---------------------------------------------------


def _designed_accuracy(rule, seed, epoch):
  """backprop rises to 0.70, feedback_alignment to 0.45-0.49; every rule starts at the same network's accuracy."""
  start = 0.10 + 0.01 * seed
  if epoch == 0:
    return start
  if rule == "backprop":
    return 0.40 + 0.02 * seed if epoch == 1 else 0.70
  return 0.25 if epoch == 1 else 0.45 + 0.01 * seed


LO, HI = 0.14, 0.45  # max over rules and seeds of the lowest accuracy, min of the highest (seed 0 of FA)


@pytest.fixture(scope="module")
def matched_workdir(tiny_workdir, tmp_path_factory):
  wd = tmp_path_factory.mktemp("matched")
  (wd / "results").mkdir()
  cfg = json.loads((tiny_workdir / "config.json").read_text())
  cfg["rules"] = ["untrained", "backprop", "feedback_alignment"]
  cfg["command"] = "leut run experiments/quickstart.py --workdir MATCHED"
  (wd / "config.json").write_text(json.dumps(cfg))
  rng = np.random.default_rng(3)
  rsa = pd.read_csv(tiny_workdir / "results" / "rsa.csv")
  fa = rsa[rsa.rule == "backprop"].copy()
  fa["rule"] = "feedback_alignment"
  trained = fa.epoch > 0
  fa.loc[trained, "rho"] = fa.loc[trained, "rho"] * 0.5 + rng.normal(0, 0.02, trained.sum())
  pd.concat([rsa, fa]).to_csv(wd / "results" / "rsa.csv", index=False)
  acc = pd.read_csv(tiny_workdir / "results" / "accuracy.csv")
  acc = pd.concat([acc, acc[acc.rule == "backprop"].assign(rule="feedback_alignment")], ignore_index=True)
  acc["accuracy"] = [_designed_accuracy(r, s, e) for r, s, e in zip(acc.rule, acc.seed, acc.epoch)]
  acc.to_csv(wd / "results" / "accuracy.csv", index=False)
  w = pd.read_csv(tiny_workdir / "results" / "weights.csv")
  pd.concat([w, w[w.rule == "backprop"].assign(rule="feedback_alignment")]).to_csv(
    wd / "results" / "weights.csv", index=False
  )
  write_report(wd, cli._workdir_config(wd, []))
  return wd


def _seed_paths(wd):
  """Independently of the module: per (rule, roi, seed) the milestones' accuracy and subject-mean rho."""
  cfg = cli._workdir_config(wd, [])
  layer_of = tables.layer_for_roi(cfg)
  rsa = pd.read_csv(wd / "results" / "rsa.csv")
  rsa = rsa[(rsa.subject != "mean") & (rsa.arm == "native") & (rsa.pairs == "all")]
  rsa = rsa[rsa.layer == rsa.roi.map(layer_of)]
  rho = rsa.groupby(["rule", "roi", "seed", "epoch"]).rho.mean()
  acc = pd.read_csv(wd / "results" / "accuracy.csv").set_index(["rule", "seed", "epoch"]).accuracy
  out = {}
  for rule, roi, seed in {k[:3] for k in rho.index}:
    if rule == "untrained":
      continue
    epochs = sorted(rho.loc[(rule, roi, seed)].index)
    out[(rule, roi, seed)] = (
      np.array([acc[(rule, seed, e)] for e in epochs]),
      rho.loc[(rule, roi, seed)].loc[epochs].to_numpy(),
    )
  return out, layer_of


def _exact_sign_flip_two_sided(d):
  t = abs(d.mean())
  flips = np.array(list(itertools.product([-1.0, 1.0], repeat=len(d))))
  return np.mean(np.abs((flips * d).mean(1)) >= t - 1e-12)


def test_the_report_matches_rules_at_accuracies_both_reach(matched_workdir):
  wd = matched_workdir
  paths, layer_of = _seed_paths(wd)
  # three evenly spaced above LO, rounded down to 0.001: 0.14 + 0.31 k/3 for k = 1, 2, 3
  targets = [0.243, 0.346, 0.450]
  per_rule = pd.read_csv(wd / "results" / "accuracy_matched.csv")
  assert len(per_rule) == 2 * 4 * 3  # trained rules x ROIs x targets; the untrained network has no path
  np.testing.assert_allclose(sorted(set(per_rule.target_accuracy)), targets, atol=1e-12)
  for _, r in per_rule.iterrows():
    seeds = [np.interp(r.target_accuracy, *paths[(r.rule, r.roi, s)]) for s in range(SEEDS)]
    assert r.layer == layer_of[r.roi] and r.n == SEEDS and r.n_reached == SEEDS and pd.isna(r.note)
    assert r["mean"] == pytest.approx(np.mean(seeds), abs=1e-12)
    assert r.sd == pytest.approx(np.std(seeds, ddof=1), abs=1e-12)

  tests = pd.read_csv(wd / "results" / "tests_accuracy_matched.csv")
  assert len(tests) == 4 * 3 and set(zip(tests.rule_a, tests.rule_b)) == {("feedback_alignment", "backprop")}
  assert (tests.family == "accuracy_matched").all() and tests.epoch_a.isna().all()
  p_ref = []
  for _, t in tests.iterrows():
    a = np.array([np.interp(t.target_accuracy, *paths[("feedback_alignment", t.roi, s)]) for s in range(SEEDS)])
    b = np.array([np.interp(t.target_accuracy, *paths[("backprop", t.roi, s)]) for s in range(SEEDS)])
    d = a - b
    assert t.mean_diff == pytest.approx(d.mean(), abs=1e-12)
    assert t.d == pytest.approx(d.mean() / d.std(ddof=1), rel=1e-5)
    assert t.n_positive == (d > 0).sum() and t.n_seeds == SEEDS
    p_ref.append(_exact_sign_flip_two_sided(d))
    assert t.p == pytest.approx(p_ref[-1], abs=1e-9)
  # one BH family over every target and ROI
  np.testing.assert_allclose(tests.p_fdr, multipletests(p_ref, method="fdr_bh")[1], atol=1e-9)


def test_the_summary_and_figure_show_the_matched_comparison(matched_workdir):
  wd = matched_workdir
  assert (wd / "figures" / "alignment_vs_accuracy.png").stat().st_size > 0
  text, _ = check_summary_against_csvs(wd)  # every printed number equals the CSV row it cites
  assert "## Alignment at matched held-out accuracy" in text
  assert "Source: `results/tests_accuracy_matched.csv` where target_accuracy=the highest of each pair" in text
  table = text.split("## Alignment at matched held-out accuracy")[1].split("\n## ")[0]
  # one row per ROI, at the highest accuracy every seed of both rules reaches
  assert sum(line.startswith("| feedback_alignment | backprop |") for line in table.splitlines()) == 4
  assert table.count(f"| {HI:.3f} |") == 4


def test_rules_whose_accuracy_ranges_do_not_overlap_are_not_compared(matched_workdir, tmp_path):
  wd = tmp_path / "wd"
  shutil.copytree(matched_workdir, wd)
  acc = pd.read_csv(wd / "results" / "accuracy.csv")
  stuck = (acc.rule == "feedback_alignment") & (acc.seed == 0)
  acc.loc[stuck, "accuracy"] = 0.10  # FA seed 0 never leaves 0.10; backprop seed 4 never falls below 0.14
  acc.to_csv(wd / "results" / "accuracy.csv", index=False)
  write_report(wd, cli._workdir_config(wd, []))
  assert not len(pd.read_csv(wd / "results" / "tests_accuracy_matched.csv"))
  text = (wd / "summary.md").read_text()
  assert "- Not defined for feedback_alignment vs backprop: no held-out accuracy above the lowest" in text


def test_one_trained_rule_is_not_compared(tiny_workdir):
  assert (
    "Not applicable: it compares trained rules, and this run has fewer than two."
    in (tiny_workdir / "summary.md").read_text()
  )


def test_explicit_targets_some_seed_does_not_reach_are_undefined_with_a_note(matched_workdir):
  wd = matched_workdir
  cfg = cli._workdir_config(wd, [])
  per_seed = tables.seed_scores(tables.headline_view(pd.read_csv(wd / "results" / "rsa.csv"), cfg))
  acc = pd.read_csv(wd / "results" / "accuracy.csv")
  # 0.455: FA seed 0 tops out at 0.45; 0.6: no FA seed gets there; 0.3: every seed of both rules
  per_rule, tests, targets = accuracy_matched.accuracy_matched(per_seed, acc, targets=[0.3, 0.455, 0.6])
  fa = per_rule[per_rule.rule == "feedback_alignment"].set_index(["roi", "target_accuracy"])
  bp = per_rule[per_rule.rule == "backprop"]
  assert bp["mean"].notna().all() and (bp.note == "").all()
  for roi in dict.fromkeys(per_rule.roi):
    assert np.isfinite(fa.loc[(roi, 0.3), "mean"])
    partly = fa.loc[(roi, 0.455)]
    assert np.isnan(partly["mean"]) and partly.n_reached == 4  # the 4 seeds that reach it are a selected subset
    assert partly.note == "not reached by seeds 0 of feedback_alignment (no extrapolation)"
    assert fa.loc[(roi, 0.6)].note == "not reached by seeds 0;1;2;3;4 of feedback_alignment (no extrapolation)"
  undefined = tests[tests.target_accuracy > 0.4]
  assert undefined.p.isna().all() and undefined.p_fdr.isna().all() and (undefined.note != "").all()
  defined = tests[tests.target_accuracy == 0.3]
  assert defined.p.notna().all() and (defined.note == "").all()
