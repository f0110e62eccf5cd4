"""The report on workdirs a tiny run does not make: 32 seeds (Monte Carlo sign flips), no trained rule, no
untrained rule. CSV-only workdirs, generated here."""

import json
import re

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from leut import cli
from leut.report import seed_stats, write_report

LAYERS = ("conv1", "conv2", "conv3", "fc1")
ROIS = ("V1", "IT")


def fake_workdir(wd, tiny_workdir, *, rules, seeds, epochs=(0, 1, 2), boost=0.05):
  """rsa/accuracy/weights CSVs with a known structure: backprop raises fc1-IT by `boost` in every seed."""
  rng = np.random.default_rng(1)
  (wd / "results").mkdir(parents=True)
  cfg = json.loads((tiny_workdir / "config.json").read_text())
  cfg.update(rules=list(rules), seeds=seeds, milestones=list(epochs), epochs=max(epochs))
  cfg["data"]["rois"] = list(ROIS)
  (wd / "config.json").write_text(json.dumps(cfg))
  rows, acc, w = [], [], []
  for rule in rules:
    for epoch in epochs if rule != "untrained" else (0,):
      for seed in range(seeds):
        acc.append(dict(rule=rule, seed=seed, epoch=epoch, step=epoch * 2, accuracy=0.1 + 0.1 * epoch))
        for layer in LAYERS:
          w.append(dict(rule=rule, seed=seed, epoch=epoch, layer=layer, rel_displacement=0.1 * epoch))
          for roi in ROIS:
            base = 0.05 if (layer, roi) == ("conv1", "V1") else 0.0
            lift = boost * epoch / max(epochs) if (rule, layer, roi) == ("backprop", "fc1", "IT") else 0.0
            seed_effect = 0.01 * np.sin(seed)
            for subj in ("sub-01", "sub-02", "sub-03", "mean"):
              rho = base + lift + seed_effect + 0.002 * rng.normal() + 0.01 * rng.normal() * (epoch > 0)
              rows.append(
                dict(
                  rule=rule,
                  seed=seed,
                  epoch=epoch,
                  step=epoch * 2,
                  layer=layer,
                  roi=roi,
                  subject=subj,
                  resolution=32,
                  arm="native",
                  pairs="all",
                  rho=rho,
                  note=np.nan,
                )
              )
  pd.DataFrame(rows).to_csv(wd / "results" / "rsa.csv", index=False)
  pd.DataFrame(acc).to_csv(wd / "results" / "accuracy.csv", index=False)
  pd.DataFrame(w).to_csv(wd / "results" / "weights.csv", index=False)
  write_report(wd, cli._workdir_config(wd, []))
  return wd


def test_32_seeds_report_the_monte_carlo_floor(tmp_path, tiny_workdir):
  wd = fake_workdir(tmp_path / "wd", tiny_workdir, rules=("untrained", "backprop"), seeds=32)
  t = pd.read_csv(wd / "results" / "tests_vs_untrained.csv").set_index("roi")
  assert (t.method == "monte_carlo").all() and (t.n_seeds == 32).all()
  floor = 1 / (1 + seed_stats.N_MC)
  assert t.p_floor.to_numpy() == pytest.approx(floor)
  assert t.loc["IT", "p"] == pytest.approx(floor) and t.loc["IT", "floored"]
  text = (wd / "summary.md").read_text()
  assert f"p = {floor:.3g} is the smallest attainable with 32 seeds and Monte Carlo sign flips" in text
  assert "exact enumeration would allow 4.66e-10" in text  # 2 * 2^-32, two-sided


def test_untrained_only(tmp_path, tiny_workdir):
  wd = fake_workdir(tmp_path / "wd", tiny_workdir, rules=("untrained",), seeds=3)
  assert (wd / "figures" / "alignment.png").exists() and (wd / "summary.md").exists()
  assert pd.read_csv(wd / "results" / "ground_truth.csv").check.tolist() == ["a", "c"]


def test_without_an_untrained_rule_epoch_0_is_the_baseline(tmp_path, tiny_workdir):
  wd = fake_workdir(tmp_path / "wd", tiny_workdir, rules=("backprop",), seeds=5, boost=0.5)
  t = pd.read_csv(wd / "results" / "tests_vs_untrained.csv").set_index("roi")
  assert (t.rule_b == "backprop").all() and (t.epoch_b == 0).all()
  assert t.loc["IT", "p"] == 2 / 32 and t.loc["IT", "floored"]


def _rewrite(wd, edit):
  """Apply `edit` to the workdir's rsa.csv and redraw the report."""
  rsa = pd.read_csv(wd / "results" / "rsa.csv")
  edit(rsa)
  rsa.to_csv(wd / "results" / "rsa.csv", index=False)
  write_report(wd, cli._workdir_config(wd, []))


def test_zero_spread_d_is_not_defined_in_the_tables_and_the_summary(tmp_path, tiny_workdir):
  wd = fake_workdir(tmp_path / "wd", tiny_workdir, rules=("untrained", "backprop"), seeds=5)

  def same_lift_in_every_seed(rsa):  # backprop at epoch 2 = the untrained network + 0.04, seed by seed
    base = rsa[(rsa.rule == "untrained")].set_index(["seed", "layer", "roi", "subject"]).rho
    hit = (rsa.rule == "backprop") & (rsa.epoch == 2)
    keys = pd.MultiIndex.from_frame(rsa.loc[hit, ["seed", "layer", "roi", "subject"]])
    rsa.loc[hit, "rho"] = base.reindex(keys).to_numpy() + 0.04

  _rewrite(wd, same_lift_in_every_seed)
  t = pd.read_csv(wd / "results" / "tests_vs_untrained.csv")
  assert t.d.isna().all() and np.allclose(t.mean_diff, 0.04)  # was ±inf (or ~1e15 from rounding)
  text = (wd / "summary.md").read_text()
  assert "d = not defined" in text and not re.search(r"\binf\b", text)
  line = next(l for l in text.splitlines() if l.startswith("| backprop | IT | fc1 | 2 |"))
  assert "| not defined |" in line


def test_drop_pct_needs_an_epoch_0_baseline_above_zero(tmp_path, tiny_workdir):
  wd = fake_workdir(tmp_path / "wd", tiny_workdir, rules=("untrained", "backprop"), seeds=5)
  drop = pd.read_csv(wd / "results" / "first_epoch_drop.csv").set_index("roi")
  v1, it = drop.loc["V1"], drop.loc["IT"]  # V1 (conv1) is built 0.05 above 0 at epoch 0, IT (fc1) around 0
  assert v1.e0_ci_lo > 0 and v1.drop_pct == pytest.approx(100 * (v1.rho_e0 - v1.rho_e1) / v1.rho_e0)
  assert pd.isna(v1.note)
  assert it.e0_ci_lo < 0 < it.e0_ci_hi and np.isnan(it.drop_pct)
  assert it.note == "drop_pct not defined: the epoch-0 95% CI does not lie above 0"
  rsa = pd.read_csv(wd / "results" / "rsa.csv")  # an independent t-interval of the epoch-0 seed scores
  e0 = rsa[
    (rsa.rule == "backprop") & (rsa.epoch == 0) & (rsa.roi == "IT") & (rsa.layer == "fc1") & (rsa.subject != "mean")
  ]
  s = e0.groupby("seed").rho.mean()
  half = sps.t.ppf(0.975, len(s) - 1) * s.std(ddof=1) / np.sqrt(len(s))
  assert it.e0_ci_lo == pytest.approx(s.mean() - half) and it.e0_ci_hi == pytest.approx(s.mean() + half)
  assert (
    "drop_pct = 100 (rho_e0 − rho_e1) / rho_e0 is given only where the epoch-0 95% CI"
    in (wd / "summary.md").read_text()
  )


def test_summary_says_what_each_test_generalises_over_and_names_every_bh_family(tmp_path, tiny_workdir):
  wd = fake_workdir(tmp_path / "wd", tiny_workdir, rules=("untrained", "backprop"), seeds=5)
  text = " ".join((wd / "summary.md").read_text().split())
  assert "the t-intervals and the sign-flip tests take seeds as the replicates" in text
  assert "for these stimuli and these subjects, which are held fixed" in text
  assert (
    "The stimulus bootstrap (stimulus CIs and paired differences) resamples the stimuli with the networks fixed" in text
  )
  assert "Subjects are fixed effects everywhere" in text
  for family in ("tests_vs_untrained.csv", "tests_between_rules.csv", "tests_epoch1_vs_0.csv", "tests_trend.csv"):
    assert f"`{family}` all its rows" in text or f"`p_fdr` in `{family}` adjusts all its rows" in text, family
  assert "`tests_vs_backprop.csv` is a view of its rows with rule_b = backprop, with the same p_fdr" in text
  assert "`p_fdr_dynamics` adjusts the epoch1_vs_0 and trend rows together" in text
  assert "one contrast (vs_untrained, between_rules or vs_previous_epoch) in one evaluation condition" in text


def test_a_seed_with_undefined_rho_is_left_out_and_counted(tmp_path, tiny_workdir):
  wd = fake_workdir(tmp_path / "wd", tiny_workdir, rules=("untrained", "backprop"), seeds=5)

  def seed_3_diverged(rsa):
    hit = (rsa.rule == "backprop") & (rsa.seed == 3) & (rsa.epoch > 0)
    rsa.loc[hit, "rho"] = np.nan
    rsa["note"] = rsa["note"].astype(object)
    rsa.loc[hit, "note"] = "non_finite_features"

  _rewrite(wd, seed_3_diverged)
  res = wd / "results"
  align = pd.read_csv(res / "alignment.csv")
  bp = align[align.rule == "backprop"].set_index(["epoch", "roi"])
  assert (bp.loc[[1, 2], "n"] == 4).all() and (bp.loc[[1, 2], "n_excluded"] == 1).all()
  assert (bp.loc[0, "n"] == 5).all() and (bp.loc[0, "n_excluded"] == 0).all()
  for fam in ("vs_untrained", "epoch1_vs_0"):
    t = pd.read_csv(res / f"tests_{fam}.csv")
    assert (t.n_seeds == 4).all() and (t.n_excluded == 1).all(), fam
    assert (t.p_floor == 2 / 16).all(), fam  # the floor follows the 4 seeds left
  drop = pd.read_csv(res / "first_epoch_drop.csv")
  assert (drop.n == 4).all() and (drop.n_excluded == 1).all()
  text = (wd / "summary.md").read_text()
  assert "Seeds left out: in 4 of 8 headline conditions" in text
  assert "| backprop | 1 | IT | fc1 | 5 | 1 | 3 | non_finite_features |" in text


def test_a_brain_rdm_out_of_register_with_the_truth_fails_check_d(tmp_path, tiny_workdir):
  """Check (d) reads results/brain_truth.csv: a significant positive rho passes, a rho near 0 (stimuli out of
  register) fails, and the summary marks it."""
  wd = fake_workdir(tmp_path / "wd", tiny_workdir, rules=("untrained", "backprop"), seeds=3)
  truth = pd.DataFrame(
    [
      dict(roi="V1", subject="sub-01", n_stimuli=48, rho=0.61, p=np.nan),
      dict(roi="V1", subject="mean", n_stimuli=48, rho=0.66, p=0.001),
      dict(roi="IT", subject="sub-01", n_stimuli=48, rho=0.02, p=np.nan),
      dict(roi="IT", subject="mean", n_stimuli=48, rho=0.01, p=0.41),
    ]
  )
  truth.to_csv(wd / "results" / "brain_truth.csv", index=False)
  write_report(wd, cli._workdir_config(wd, []))
  d = pd.read_csv(wd / "results" / "ground_truth.csv").query("check == 'd'").set_index("roi")
  assert d.loc["V1", "passed"] and not d.loc["IT", "passed"]
  assert d.loc["IT", "p"] == 0.41 and d.loc["V1", "mean"] == 0.66
  text = (wd / "summary.md").read_text()
  assert "- ✗ (d) the scored IT RDMs recover" in text and "- ✓ (d) the scored V1 RDMs recover" in text
