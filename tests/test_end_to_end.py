"""`leut run` on the quickstart config with a tiny override, then `leut evaluate` and bad-input errors."""

import json
import pickle
import shutil
import socket
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from leut import cli
from tests.helpers import PLUMBING_RUN
from tests.report.conftest import TINY as SHARED_RUN  # the arguments of the `workdir` fixture's run

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
  """A copy of the session's one tiny `leut run` (tests/report/conftest.py: untrained + backprop, 5 seeds, milestones
  0 1 2, 40 stimuli at 32 px), which the tests below re-evaluate, lock and damage."""
  from tests.report.conftest import tiny_workdir_path

  wd = tmp_path_factory.mktemp("quickstart") / "wd"
  shutil.copytree(tiny_workdir_path(tmp_path_factory, synthetic_dir), wd)
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
  assert len(rsa) == (1 + 3) * 5 * 4 * 4 * 4 * 2
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
  assert f"{per_seed.mean():.3f} ± {per_seed.std():.3f} (n=5)" in text


def test_evaluate_rescored_with_new_resolution_without_retraining(workdir):
  before = {p: p.stat().st_mtime for p in (workdir / "checkpoints").rglob("*") if p.is_file()}
  rc = cli.main(["evaluate", "--workdir", str(workdir), "--config.eval.resolutions=32,64", "--no-progress"])
  assert rc == 0
  rsa = pd.read_csv(workdir / "results" / "rsa.csv")
  assert set(rsa.resolution) == {32, 64}
  saved = json.loads((workdir / "config.json").read_text())  # config.json describes the tables now there
  assert saved["eval"]["resolutions"] == [32, 64] and saved["command"].startswith("leut evaluate --workdir")
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
  assert saved["seeds"] == 5 and saved["model"]["widths"] == [4, 8, 8]
  assert saved["command"].startswith(("leut run experiments/quickstart.py --workdir", "leut evaluate --workdir"))


def test_partial_and_bootstrap_run_at_the_first_and_last_milestone(workdir):
  partial = pd.read_csv(workdir / "results" / "partial.csv")
  boot = pd.read_csv(workdir / "results" / "bootstrap.csv")
  assert set(partial.epoch[partial.rule == "backprop"]) == {0, 2}
  assert set(partial.control) == {"pixel", "luminance", "all"}
  assert ((boot.ci_lo <= boot.rho) & (boot.rho <= boot.ci_hi)).all()


def test_bootstrap_differences_equal_numpy_on_the_saved_draws(workdir):
  from leut.scoring import bootstrap_differences

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
  assert set(cv.epoch[cv.rule == "backprop"]) == {0, 2} and set(cv.seed) == set(range(5))
  assert cv.cv_score.notna().all() and cv.naive_max.notna().all()
  # the halvings are shared: the untrained network and backprop's epoch 0 (the same network) get identical rows
  cols = ["seed", "roi", "pairs", "chosen_layers", "cv_score", "naive_max"]
  a = cv[cv.rule == "untrained"][cols].reset_index(drop=True)
  b = cv[(cv.rule == "backprop") & (cv.epoch == 0)][cols].reset_index(drop=True)
  pd.testing.assert_frame_equal(a, b)
  assert cv.chosen_layers.str.split(";").map(len).eq(2 * cv.n_splits).all()
  assert set(";".join(cv.chosen_layers).split(";")) <= {"conv1", "conv2", "conv3", "fc1"}


# ----- a workdir a researcher can trust (issue 14) -------------------------------------------------------------


def _copy(workdir, tmp_path, *, checkpoints=True):
  dst = tmp_path / "copy"
  shutil.copytree(workdir, dst, ignore=None if checkpoints else shutil.ignore_patterns("checkpoints"))
  return dst


def _run_args(wd, synthetic_dir, *extra):
  return [
    "run",
    "experiments/quickstart.py",
    "--workdir",
    str(wd),
    f"--config.data.synthetic_dir={synthetic_dir}",
    *SHARED_RUN,
    *extra,
  ]


def test_a_damaged_older_milestone_stops_the_evaluation_naming_rule_and_epoch(workdir, tmp_path, capsys):
  from tests.test_checkpoint import flip_a_byte

  wd = _copy(workdir, tmp_path)
  flip_a_byte(wd / "checkpoints" / "backprop" / "2")  # epoch 1 (2 steps per epoch); epoch 2 is intact
  with pytest.warns(UserWarning, match="backprop/2"):
    rc = cli.main(["evaluate", "--workdir", str(wd), "--no-progress"])
  err = capsys.readouterr().err
  assert rc == 2 and "backprop" in err and "epoch 1" in err and "leut run" in err
  assert (wd / "checkpoints" / "backprop" / "corrupt" / "2").is_dir()  # set aside, not deleted


@pytest.mark.parametrize("damage", ["never_trained", "digests_missing"])
def test_evaluate_refuses_a_configured_rule_without_checkpoints(workdir, tmp_path, capsys, damage):
  wd = _copy(workdir, tmp_path)
  args = ["evaluate", "--workdir", str(wd), "--no-progress"]
  if damage == "never_trained":
    args.append("--config.rules=untrained,backprop,feedback_alignment")
    name = "feedback_alignment"
  else:
    (wd / "checkpoints" / "backprop" / "digests.json").unlink()
    name = "backprop"
  before = (wd / "results" / "rsa.csv").read_bytes()
  assert cli.main(args) == 2
  err = capsys.readouterr().err
  assert name in err and "leut run" in err
  assert (wd / "results" / "rsa.csv").read_bytes() == before


def test_report_refuses_a_truncated_table(workdir, tmp_path, capsys):
  wd = _copy(workdir, tmp_path, checkpoints=False)
  assert cli.main(["report", "--workdir", str(wd)]) == 0  # the tables as evaluated are accepted
  lines = (wd / "results" / "rsa.csv").read_text().splitlines(keepends=True)
  (wd / "results" / "rsa.csv").write_text("".join(lines[: len(lines) // 2]))  # a write cut short
  capsys.readouterr()
  assert cli.main(["report", "--workdir", str(wd)]) == 2
  err = capsys.readouterr().err
  assert "rsa.csv" in err and "leut evaluate" in err


def test_a_failed_reevaluation_leaves_config_and_tables_as_they_were(workdir, tmp_path, synthetic_dir, monkeypatch):
  from leut import evaluate

  wd = _copy(workdir, tmp_path)
  config_before = (wd / "config.json").read_text()
  rsa_before = (wd / "results" / "rsa.csv").read_bytes()

  def boom(*a, **k):
    raise RuntimeError("evaluation died")

  monkeypatch.setattr(evaluate, "evaluate_rule", boom)
  with pytest.raises(RuntimeError, match="evaluation died"):
    cli.main(_run_args(wd, synthetic_dir, "--config.eval.resolutions=64"))
  assert (wd / "config.json").read_text() == config_before
  assert (wd / "results" / "rsa.csv").read_bytes() == rsa_before
  monkeypatch.undo()
  assert cli.main(["report", "--workdir", str(wd)]) == 0  # old config, old tables, old marker: still consistent


def test_report_refuses_tables_that_lack_a_configured_milestone(workdir, tmp_path):
  from leut import report

  wd = _copy(workdir, tmp_path, checkpoints=False)
  for name in ("rsa", "accuracy", "weights"):
    df = pd.read_csv(wd / "results" / f"{name}.csv")
    df[df.epoch != 1].to_csv(wd / "results" / f"{name}.csv", index=False)  # epoch 1's checkpoint was lost
  with pytest.raises(Exception, match=r"backprop.*epoch 1"):
    report.write_report(wd, cli._workdir_config(wd, []))
  assert not (wd / "results" / "first_epoch_drop.csv").exists() or "2" not in set(
    pd.read_csv(wd / "results" / "first_epoch_drop.csv").epoch_b.astype(str)
  )


def test_a_changed_default_in_code_is_refused_with_the_difference(workdir, monkeypatch, capsys):
  from leut.rules import backprop

  real = backprop.protocol_optimizer

  def changed_default(*, steps_per_epoch, epochs, learning_rate=5e-4, weight_decay=1e-4, clip_norm=1.0):
    return real(steps_per_epoch=steps_per_epoch, epochs=epochs, learning_rate=learning_rate, clip_norm=clip_norm)

  monkeypatch.setattr(backprop, "protocol_optimizer", changed_default)
  assert cli.main(["evaluate", "--workdir", str(workdir), "--no-progress"]) == 2
  err = capsys.readouterr().err
  assert "learning_rate" in err and "0.001" in err and "0.0005" in err


def test_config_json_records_the_code_and_every_resolved_setting(workdir):
  saved = json.loads((workdir / "config.json").read_text())
  code = saved["provenance"]
  assert code["version"] and (code["commit"] is None or len(code["commit"]) == 40)
  backprop = code["resolved_rules"]["backprop"]
  assert backprop["rule"] == {"dropout_rate": 0.3}
  assert backprop["optimizer"] == {"learning_rate": 1e-3, "weight_decay": 1e-4, "clip_norm": 1.0}


@pytest.mark.parametrize(
  "bad, field",
  [
    (["--config.data.source=files", "--config.data.things_fmri_dir={root}/things_fmri_typo"], "things_fmri"),
    (["--config.eval.resolutions=40"], "eval.resolutions"),
  ],
  ids=["fmri_path_typo", "resolution_40"],
)
def test_inputs_are_checked_before_any_training(tmp_path, synthetic_dir, capsys, bad, field):
  from leut.data import synthetic

  root = synthetic.ensure_default(synthetic_dir)
  files = [f"--config.data.cifar_dir={root.cifar_dir}", f"--config.data.things_images_dir={root.things_images_dir}"]
  wd = tmp_path / "wd"
  rc = cli.main(_run_args(wd, synthetic_dir, *files, *[b.format(root=synthetic_dir) for b in bad]))
  err = capsys.readouterr().err
  assert rc == 2 and field in err and "Traceback" not in err
  assert not (wd / "checkpoints").exists() and not (wd / "config.json").exists()


def test_a_failed_first_run_does_not_poison_its_workdir(tmp_path, synthetic_dir, capsys):
  from leut import config as config_lib
  from leut import experiment
  from leut.data import synthetic

  root = synthetic.ensure_default(synthetic_dir)
  files = [
    "--config.data.source=files",
    f"--config.data.things_images_dir={root.things_images_dir}",
    f"--config.data.things_fmri_dir={root.things_fmri_dir}",
  ]
  wd = tmp_path / "wd"
  assert cli.main(_run_args(wd, synthetic_dir, *files, f"--config.data.cifar_dir={tmp_path / 'cifar_typo'}")) == 2
  assert "data.cifar_dir" in capsys.readouterr().err
  fixed = [a for a in _run_args(wd, synthetic_dir, *files, f"--config.data.cifar_dir={root.cifar_dir}") if "=" in a]
  experiment.prepare_workdir(config_lib.load("experiments/quickstart.py", fixed), wd)  # accepted: no mismatch


@pytest.mark.parametrize(
  "override, field",
  [
    ("--config.epochs=-1", "epochs"),
    ("--config.milestones=0,1,3", "milestones"),  # TINY trains 2 epochs
    ("--config.seeds=0", "seeds"),
    ("--config.batch_size=0", "batch_size"),
    ("--config.batch_size=128", "batch_size"),  # more than the 64 training images of TINY
    ("--config.seeds=", "seeds"),
    ("--config.rules=", "rules"),
  ],
)
def test_nonsense_configs_are_one_line_errors_before_anything_is_written(
  tmp_path, synthetic_dir, capsys, override, field
):
  wd = tmp_path / "wd"
  rc = cli.main(_run_args(wd, synthetic_dir, override))
  err = capsys.readouterr().err
  assert rc == 2 and field in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
  assert not (wd / "config.json").exists() and not (wd / "checkpoints").exists()


def test_cifar_labels_outside_the_models_classes_are_refused(tmp_path, synthetic_dir, capsys):
  from leut.data import synthetic
  from leut.data.py2pickle import dumps_py2

  root = synthetic.ensure_default(synthetic_dir)
  cifar = tmp_path / "cifar"
  synthetic.write_cifar10(cifar, n_train=100, n_test=20)
  folder = cifar / "cifar-10-batches-py"
  names = [f"c{k}".encode() for k in range(100)]  # a CIFAR-100-like meta: 100 class names
  (folder / "batches.meta").write_bytes(dumps_py2({b"label_names": names}))
  batch = pickle.loads((folder / "data_batch_3").read_bytes(), encoding="bytes")
  batch[b"labels"] = [42] + list(batch[b"labels"][1:])
  (folder / "data_batch_3").write_bytes(dumps_py2(batch))
  files = [
    "--config.data.source=files",
    f"--config.data.cifar_dir={cifar}",
    f"--config.data.things_images_dir={root.things_images_dir}",
    f"--config.data.things_fmri_dir={root.things_fmri_dir}",
  ]
  rc = cli.main(_run_args(tmp_path / "wd", synthetic_dir, *files))
  err = capsys.readouterr().err
  assert rc == 2 and "42" in err and "10 classes" in err
  assert not (tmp_path / "wd" / "checkpoints").exists()


def test_a_second_run_on_a_busy_workdir_is_refused(workdir, capsys):
  holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
  lock = workdir / "leut.lock"
  try:
    lock.write_text(json.dumps({"pid": holder.pid, "host": socket.gethostname(), "command": "leut run elsewhere"}))
    before = (workdir / "results" / "rsa.csv").stat().st_mtime_ns
    assert cli.main(["evaluate", "--workdir", str(workdir), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert str(holder.pid) in err and "leut run elsewhere" in err
    assert (workdir / "results" / "rsa.csv").stat().st_mtime_ns == before
  finally:
    holder.kill()
    holder.wait()
    lock.unlink(missing_ok=True)


def test_a_tiny_run_of_the_control_rules_writes_rows_for_each(tmp_path, synthetic_dir):
  """sign symmetry, Kolen–Pollack, SoftHebb and contrastive learning train, are scored and reported like any rule
  (one seed, one step per epoch: the point is the plumbing, not the numbers)."""
  controls = ["sign_symmetry", "kolen_pollack", "soft_hebb", "contrastive"]
  args = [
    "run",
    "experiments/quickstart.py",
    "--workdir",
    str(tmp_path),
    f"--config.data.synthetic_dir={synthetic_dir}",
  ]
  args += [
    a for a in TINY if not a.startswith(("--config.seeds", "--config.epochs", "--config.milestones", "--config.model"))
  ]
  args += [
    f"--config.rules=untrained,{','.join(controls)}",
    "--config.seeds=1",
    "--config.epochs=1",
    "--config.milestones=0,1",
    "--config.data.train_subset=32",
    *PLUMBING_RUN,
    "--config.rule_hparams.sign_symmetry.magnitude=random",
    "--config.model.widths=(4,)",  # one block: five rules compile in a fraction of the time
    "--config.model.fc_dim=8",
  ]
  assert cli.main(args) == 0
  rsa = pd.read_csv(tmp_path / "results" / "rsa.csv")
  accuracy = pd.read_csv(tmp_path / "results" / "accuracy.csv")
  assert set(rsa.rule) == set(accuracy.rule) == {"untrained", *controls}
  for rule in controls:
    assert set(rsa[rsa.rule == rule].epoch) == {0, 1} and rsa[rsa.rule == rule].rho.notna().any(), rule
    assert accuracy[(accuracy.rule == rule) & (accuracy.epoch == 1)].accuracy.between(0, 1).all(), rule
  log = pd.read_json(tmp_path / "metrics.jsonl", lines=True)
  assert set(log.rule) == set(controls) and np.isfinite(log.train_loss).all()
  assert log[log.rule == "contrastive"].train_nt_xent.gt(0).all()
  saved = json.loads((tmp_path / "config.json").read_text())
  assert saved["rule_hparams"]["sign_symmetry"] == {"magnitude": "random"}
