"""`leut run` on the quickstart config with a tiny override, then `leut evaluate` and bad-input errors."""

import json

import numpy as np
import pandas as pd
import pytest

from leut import cli

TINY = [
  "--config.seeds=2",
  "--config.epochs=2",
  "--config.milestones=0,1,2",
  "--config.model.widths=(4,8,8)",
  "--config.model.fc_dim=16",
  "--config.data.train_subset=64",
  "--config.eval.resolutions=32",
  "--config.eval.test_images=64",
  "--config.data.n_stimuli=40",
  "--no-progress",
]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, synthetic_dir):
  wd = tmp_path_factory.mktemp("quickstart")
  rc = cli.main(
    [
      "run",
      "experiments/quickstart.py",
      "--workdir",
      str(wd),
      f"--config.data.synthetic_dir={synthetic_dir}",
      "--config.rules=untrained,backprop",
      *TINY,
    ]
  )
  assert rc == 0
  return wd


def test_run_writes_every_documented_output(workdir):
  for rel in (
    "config.json",
    "metrics.jsonl",
    "results/rsa.csv",
    "results/accuracy.csv",
    "results/weights.csv",
    "results/noise_ceiling.csv",
    "results/partial.csv",
    "results/bootstrap.csv",
    "results/bootstrap_draws.npz",
    "results/bootstrap_differences.csv",
    "results/best_layer_cv.csv",
    "figures/alignment.png",
    "figures/alignment.pdf",
    "summary.md",
  ):
    assert (workdir / rel).is_file(), rel
  assert sorted(p.name for p in (workdir / "checkpoints" / "backprop").iterdir() if p.name.isdigit()) == [
    "0",
    "2",
    "4",
  ]  # epochs 0, 1, 2 at 2 steps per epoch
  assert [p.name for p in (workdir / "checkpoints" / "untrained").iterdir() if p.name.isdigit()] == ["0"]


def test_rsa_table_is_complete_and_untrained_equals_every_rules_epoch_zero(workdir):
  rsa = pd.read_csv(workdir / "results" / "rsa.csv")
  for col in ("rule", "seed", "epoch", "layer", "roi", "subject", "resolution", "rho"):
    assert col in rsa.columns
  # rules x seeds x epochs x layers x rois x (3 subjects + mean) x pair sets
  assert len(rsa) == (1 + 3) * 2 * 4 * 4 * 4 * 2
  assert set(rsa.subject) == {"sub-01", "sub-02", "sub-03", "mean"}
  assert rsa.rho.notna().all() and (rsa.rho.abs() <= 1).all()
  key = ["seed", "layer", "roi", "subject", "pairs"]
  a = rsa[(rsa.rule == "untrained")].sort_values(key).rho.to_numpy()
  b = rsa[(rsa.rule == "backprop") & (rsa.epoch == 0)].sort_values(key).rho.to_numpy()
  np.testing.assert_array_equal(a, b)
  assert not np.allclose(b, rsa[(rsa.rule == "backprop") & (rsa.epoch == 2)].sort_values(key).rho.to_numpy())


def test_summary_numbers_equal_the_csv_rows_they_cite(workdir):
  rsa = pd.read_csv(workdir / "results" / "rsa.csv")
  rows = rsa[
    (rsa.rule == "backprop")
    & (rsa.epoch == 2)
    & (rsa.layer == "conv1")
    & (rsa.roi == "V1")
    & (rsa.pairs == "all")
    & (rsa.subject != "mean")
    & (rsa.arm == "native")
  ]
  per_seed = rows.groupby("seed").rho.mean()
  text = (workdir / "summary.md").read_text()
  assert f"{per_seed.mean():.3f} ± {per_seed.std():.3f} (n=2)" in text


def test_evaluate_rescored_with_new_resolution_without_retraining(workdir):
  before = {p: p.stat().st_mtime for p in (workdir / "checkpoints").rglob("*") if p.is_file()}
  rc = cli.main(["evaluate", "--workdir", str(workdir), "--config.eval.resolutions=32,64", "--no-progress"])
  assert rc == 0
  rsa = pd.read_csv(workdir / "results" / "rsa.csv")
  assert set(rsa.resolution) == {32, 64}
  after = {p: p.stat().st_mtime for p in (workdir / "checkpoints").rglob("*") if p.is_file()}
  assert before == after


def test_evaluate_refuses_a_training_change(workdir, capsys):
  assert cli.main(["evaluate", "--workdir", str(workdir), "--config.seeds=3", "--no-progress"]) == 2
  assert "seeds" in capsys.readouterr().err


def test_unknown_rule_is_named(tmp_path, synthetic_dir, capsys):
  rc = cli.main(
    [
      "run",
      "experiments/quickstart.py",
      "--workdir",
      str(tmp_path),
      f"--config.data.synthetic_dir={synthetic_dir}",
      "--config.rules=backprop,hebbian",
      *TINY,
    ]
  )
  err = capsys.readouterr().err
  assert rc == 2 and "hebbian" in err and "available rules" in err


def test_missing_dataset_says_what_and_where(tmp_path, capsys):
  rc = cli.main(
    [
      "run",
      "experiments/quickstart.py",
      "--workdir",
      str(tmp_path / "wd"),
      "--config.data.source=files",
      f"--config.data.cifar_dir={tmp_path / 'nope'}",
      f"--config.data.things_images_dir={tmp_path}",
      f"--config.data.things_fmri_dir={tmp_path}",
      *TINY,
    ]
  )
  err = capsys.readouterr().err
  assert rc == 2 and "cifar" in err.lower() and "data.cifar_dir" in err and "download" in err.lower()


def test_config_json_records_the_overrides(workdir):
  saved = json.loads((workdir / "config.json").read_text())
  assert saved["seeds"] == 2 and saved["model"]["widths"] == [4, 8, 8]
  assert saved["command"].startswith("leut run experiments/quickstart.py --workdir")


def test_partial_and_bootstrap_run_at_the_first_and_last_milestone(workdir):
  partial = pd.read_csv(workdir / "results" / "partial.csv")
  boot = pd.read_csv(workdir / "results" / "bootstrap.csv")
  assert set(partial.epoch[partial.rule == "backprop"]) == {0, 2}
  assert set(partial.control) == {"pixel", "luminance", "all"}
  assert ((boot.ci_lo <= boot.rho) & (boot.rho <= boot.ci_hi)).all()


def test_bootstrap_differences_equal_numpy_on_the_saved_draws(workdir):
  from leut.report import bootstrap_differences

  boot = pd.read_csv(workdir / "results" / "bootstrap.csv")
  diffs = pd.read_csv(workdir / "results" / "bootstrap_differences.csv")
  keys, draws_CxB = bootstrap_differences.load_draws(workdir / "results" / "bootstrap_draws.npz")
  assert len(keys) == len(boot) and (keys.rule.to_numpy() == boot.rule.to_numpy()).all()
  np.testing.assert_allclose(np.quantile(draws_CxB, [0.025, 0.975], axis=1).T, boot[["ci_lo", "ci_hi"]], atol=1e-12)
  at = {(k.rule, k.epoch, k.roi, k.pairs, k.resolution): i for i, k in enumerate(keys.itertuples())}
  assert set(diffs.contrast) == {"vs_untrained"} and set(diffs.epoch_a) == {2}  # one trained rule, first_last
  assert len(diffs) == 4 * 2 * diffs.resolution.nunique()  # headline layer of each ROI x pair sets x resolutions
  for _, r in diffs.iterrows():
    cond = (r.roi, r.pairs, r.resolution)
    d = draws_CxB[at[(r.rule_a, r.epoch_a) + cond]] - draws_CxB[at[(r.rule_b, r.epoch_b) + cond]]
    np.testing.assert_allclose([r.ci_lo, r.ci_hi], np.quantile(d, [0.025, 0.975]), atol=1e-12)
    p = min(1.0, (2 * min((d <= 0).sum(), (d >= 0).sum()) + 1) / (len(d) + 1))
    assert r.p == pytest.approx(p, rel=1e-12)


def test_cross_validated_best_layer_is_written(workdir):
  cv = pd.read_csv(workdir / "results" / "best_layer_cv.csv")
  assert set(cv.epoch[cv.rule == "backprop"]) == {0, 2} and set(cv.seed) == {0, 1}
  assert cv.cv_score.notna().all() and cv.naive_max.notna().all()
  # the halvings are shared: the untrained network and backprop's epoch 0 (the same network) get identical rows
  cols = ["seed", "roi", "pairs", "chosen_layers", "cv_score", "naive_max"]
  a = cv[cv.rule == "untrained"][cols].reset_index(drop=True)
  b = cv[(cv.rule == "backprop") & (cv.epoch == 0)][cols].reset_index(drop=True)
  pd.testing.assert_frame_equal(a, b)
  assert cv.chosen_layers.str.split(";").map(len).eq(2 * cv.n_splits).all()
  assert set(";".join(cv.chosen_layers).split(";")) <= {"conv1", "conv2", "conv3", "fc1"}
