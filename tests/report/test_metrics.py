"""`eval.metrics=rsa,cka,encoding` end to end: `leut evaluate` on a copy of the shared tiny run (no training) writes
results/cka.csv and results/encoding.csv on rsa.csv's keys, leaves rsa.csv's scores as they were, and the report
gives each metric its seed-level table, test families, figure and summary.md section (traceable to the CSVs), and
its stimulus-level statistics (bootstrap CIs and paired differences, `leut.scoring.metric_bootstrap`)."""

import shutil

import numpy as np
import pandas as pd
import pytest

from leut import cli
from leut.report import write_report
from leut.report.tables import layer_for_roi
from tests.report.test_report_outputs import check_summary_against_csvs

KEYS = ["rule", "seed", "epoch", "step", "layer", "roi", "subject", "resolution", "arm", "readout"]


@pytest.fixture(scope="module")
def metrics_workdir(tiny_workdir, tmp_path_factory):
  wd = tmp_path_factory.mktemp("metrics") / "wd"
  shutil.copytree(tiny_workdir, wd)
  rc = cli.main(
    [
      "evaluate",
      "--workdir",
      str(wd),
      "--config.eval.metrics=rsa,cka,encoding",
      "--config.eval.n_boot=100",
      "--config.eval.best_layer_splits=0",
      "--config.eval.partial_controls=",
      "--config.eval.test_images=16",
      "--no-progress",
    ]
  )
  assert rc == 0
  return wd


def test_cka_and_encoding_tables_share_rsa_keys_and_leave_rsa_unchanged(metrics_workdir, tiny_workdir):
  res = metrics_workdir / "results"
  rsa = pd.read_csv(res / "rsa.csv")
  before = pd.read_csv(tiny_workdir / "results" / "rsa.csv")
  pd.testing.assert_frame_equal(rsa, before)  # the same features, the same RSA
  per_subject = rsa[(rsa.subject != "mean") & (rsa.pairs == "all")][KEYS].drop_duplicates()
  cka = pd.read_csv(res / "cka.csv")
  enc = pd.read_csv(res / "encoding.csv")
  for df in (cka[cka.estimator == "debiased"], enc):
    got = df[KEYS].sort_values(KEYS).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, per_subject.sort_values(KEYS).reset_index(drop=True), check_dtype=False)
  assert set(cka.estimator) == {"biased", "debiased"}
  assert cka.cka.between(-1, 1).all() and (cka.note.isna() | (cka.note == "")).all()
  assert np.isfinite(enc.score).mean() > 0.9 and (enc.n_targets > 0).all()


def test_each_metric_is_bootstrapped_over_stimuli_at_each_rois_fixed_layer(metrics_workdir):
  res = metrics_workdir / "results"
  config = cli._workdir_config(metrics_workdir, [])
  headline = layer_for_roi(config)
  for metric, value in (("cka", "cka"), ("encoding", "score")):
    boot = pd.read_csv(res / f"{metric}_bootstrap.csv")
    scores = pd.read_csv(res / f"{metric}.csv")
    assert len(boot) and all(headline[roi] == layer for roi, layer in zip(boot.roi, boot.layer))
    assert {0, scores.epoch.max()} <= set(boot.epoch)  # the statistics milestones (eval.stats_epochs)
    assert (boot.n_boot == 100).all() and (boot.readout == "mean").all()
    for _, b in boot.iterrows():
      same = scores[(scores.rule == b.rule) & (scores.epoch == b.epoch) & (scores.roi == b.roi)]
      same = same[same.layer == b.layer]
      if metric == "cka":
        same = same[same.estimator == b.estimator]
      np.testing.assert_allclose(b[value], same[value].mean(), rtol=1e-4, atol=1e-5)  # seeds x subjects, all valid
      assert b.ci_lo <= b[value] <= b.ci_hi or b.n_undefined > 0
    for name in ("bootstrap_differences", "two_level_bootstrap"):
      d = pd.read_csv(res / f"{metric}_{name}.csv")
      assert "vs_untrained" in set(d.contrast) and d[["ci_lo", "ci_hi"]].notna().mean().min() > 0.9


def test_each_metric_enters_the_report_under_the_seed_level_statistics(metrics_workdir):
  res = metrics_workdir / "results"
  for metric in ("cka", "encoding"):
    stats = pd.read_csv(res / f"{metric}_alignment.csv")
    assert {"mean", "sd", "ci_lo", "ci_hi", "n", "n_excluded"} <= set(stats.columns)
    assert (stats.n == 5).all()  # 5 seeds, none excluded
    tests = pd.read_csv(res / f"tests_{metric}_vs_untrained.csv")
    assert len(tests) and (tests.rule_b == "untrained").all() and tests.p_floor.eq(2 / 32).all()
    assert (metrics_workdir / "figures" / f"{metric}.png").exists()
  text, checked = check_summary_against_csvs(metrics_workdir)
  assert "## Linear CKA" in text and "## Encoding score" in text and "results/tests_encoding_vs_untrained.csv" in text
  assert "results/cka_two_level_bootstrap.csv" in text and "results/encoding_bootstrap.csv" in text
  assert checked > 100


def test_a_report_without_a_metrics_table_leaves_none_of_its_outputs(metrics_workdir, tmp_path):
  wd = tmp_path / "wd"
  shutil.copytree(metrics_workdir, wd, ignore=shutil.ignore_patterns("checkpoints"))
  for table in (wd / "results").glob("cka*.csv"):  # as `leut evaluate` with eval.metrics=rsa,encoding leaves it
    table.unlink()
  write_report(wd, cli._workdir_config(wd, []))
  assert not list((wd / "results").glob("*cka*")) and not list((wd / "figures").glob("cka.*"))
  assert (wd / "results" / "encoding_alignment.csv").exists() and (wd / "figures" / "encoding.png").exists()
  text = (wd / "summary.md").read_text()
  assert "CKA" not in text and "## Encoding score" in text
