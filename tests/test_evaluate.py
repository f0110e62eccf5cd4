"""Scoring: the jitted kernel equals scipy; dead (constant) features and diverged seeds are reported, not scored."""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd
import pytest
from scipy.spatial.distance import pdist, squareform
from scipy.stats import pearsonr, rankdata, spearmanr

from leut import cli, evaluate
from leut.rules import base
from leut.rules import untrained as untrained_module
from tests.test_end_to_end import TINY


def _reference_score(x, y, method):
  if method == "spearman":
    return spearmanr(x, y).statistic
  if method == "pearson":
    return pearsonr(x, y).statistic
  rx, ry = rankdata(x), rankdata(y)
  return 1 - 6 * np.sum((rx - ry) ** 2) / (len(x) ** 3 - len(x))


@pytest.mark.parametrize("method", ["spearman", "pearson", "rho_a"])
def test_score_kernel_equals_scipy_per_subject_and_mean_rdm(method):
  rng = np.random.default_rng(0)
  s, u = 12, 7
  feats_NxSxU = rng.normal(size=(2, s, u)).astype(np.float32)
  brain = np.stack(
    [np.stack([squareform(pdist(rng.normal(size=(s, 5)), "correlation")) for _ in range(3)]) for _ in range(2)]
  ).astype(np.float32)  # R=2 x J=3
  mask = rng.uniform(size=(s, s)) > 0.3
  mask = mask & mask.T
  targets = evaluate.brain_targets(jnp.asarray(brain), jnp.asarray(mask), method=method)
  per_subj, mean_rdm = evaluate.score_kernel(jnp.asarray(feats_NxSxU), targets, method=method)
  iu = np.triu_indices(s, 1)
  keep = mask[iu]
  for n in range(2):
    model = pdist(feats_NxSxU[n].astype(np.float64), "correlation")
    for r in range(2):
      for j in range(3):
        want = _reference_score(model[keep], brain[r, j][iu][keep], method)
        np.testing.assert_allclose(per_subj[n, r, j], want, atol=1e-5)
      want = _reference_score(model[keep], brain[r].astype(np.float64).mean(0)[iu][keep], method)
      np.testing.assert_allclose(mean_rdm[n, r], want, atol=1e-5)


def test_constant_features_are_reported_not_silently_scored(tmp_path, synthetic_dir, monkeypatch):
  def dead_conv1_untrained(network):
    def init(key, params):
      del key, params
      return base.EmptyState()

    def update(params, model_state, rule_state, batch, key):
      raise AssertionError("never trained")

    def evaluate_dead(params, model_state, rule_state, x):
      logits, feats = base.feedforward(network)(params, model_state, rule_state, x)
      feats = dict(feats)
      feats["conv1"] = jnp.zeros_like(feats["conv1"])  # an all-zero ReLU layer
      return logits, feats

    return base.LearningRule(init, update, evaluate_dead)

  monkeypatch.setattr(untrained_module, "untrained", dead_conv1_untrained)
  with pytest.warns(evaluate.ConstantFeatureWarning, match="conv1"):
    rc = cli.main(
      [
        "run",
        "experiments/quickstart.py",
        "--workdir",
        str(tmp_path),
        f"--config.data.synthetic_dir={synthetic_dir}",
        "--config.rules=untrained",
        *TINY,
        # what this test reads: rsa.csv, the best-layer table and the bootstrap's (empty) differences
        "--config.eval.n_boot=20",
        "--config.eval.best_layer_splits=2",
        "--config.eval.partial_controls=",
        "--config.report.figure_formats=png",
      ]
    )
  assert rc == 0
  rsa = pd.read_csv(tmp_path / "results" / "rsa.csv")
  dead = rsa[rsa.layer == "conv1"]
  assert dead.rho.isna().all() and dead.note.str.contains("constant features for 40/40 stimuli").all()
  assert rsa[rsa.layer != "conv1"].rho.notna().all()
  # the cross-validated best layer cannot choose among undefined RDMs: NaN with a note, for every seed and ROI
  cv = pd.read_csv(tmp_path / "results" / "best_layer_cv.csv")
  assert len(cv) and cv.cv_score.isna().all() and cv.note.str.contains("constant features").all()
  # one rule: nothing to contrast, and the report still renders
  assert len(pd.read_csv(tmp_path / "results" / "bootstrap_differences.csv")) == 0
  assert "## Paired stimulus-bootstrap differences" not in (tmp_path / "summary.md").read_text()


def _five_seed_state():
  import jax

  from leut.train import milestones, sharding
  from tests.helpers import random_train_data, tiny_config

  config = tiny_config(seeds=5)
  rule, trainer = milestones.build(config, "backprop", random_train_data())
  state = trainer.init_all(sharding.seed_keys(config.seed, 5))
  # make the seeds' BatchNorm statistics differ, so a wrong seed order could not pass
  state = state._replace(
    model_state=jax.tree.map(lambda x: x * jnp.arange(1, 6).reshape((5,) + (1,) * (x.ndim - 1)), state.model_state)
  )
  return config, rule.represent, state


def test_extraction_in_seed_chunks_equals_all_seeds_at_once():
  config, eval_one, state = _five_seed_state()
  images = np.random.default_rng(3).normal(size=(7, 64, 64, 3)).astype(np.float32)
  logits, feats = evaluate.extract(eval_one, state, images, chunk=4)
  logits2, feats2 = evaluate.extract(eval_one, state, images, chunk=4, seed_chunk=2)
  np.testing.assert_allclose(logits2, logits, rtol=1e-5, atol=1e-6)
  assert feats2.keys() == feats.keys() and feats["conv1"].shape == (5, 7, 4)
  for k in feats:
    np.testing.assert_allclose(feats2[k], feats[k], rtol=1e-5, atol=1e-6, err_msg=k)
  assert not np.allclose(feats["fc1"][0], feats["fc1"][1])


def test_seed_chunk_plan_follows_config_and_memory_budget(monkeypatch):
  from leut.train import sharding

  config, eval_one, state = _five_seed_state()
  shape = (64, 64, 3)
  config.seed_chunk = 2
  assert evaluate.plan_seed_chunk(config, eval_one, state, shape) == 2
  config.seed_chunk = 0
  assert evaluate.plan_seed_chunk(config, eval_one, state, shape) == 5  # fits easily: no compile needed
  need = {k: evaluate.extraction_bytes(eval_one, state, shape, config.eval.batch_size, k) for k in (1, 2, 3)}
  assert need[1] < need[2] < need[3]
  monkeypatch.setattr(sharding, "device_memory_budget", lambda: (need[2] + need[3]) // 2)
  assert evaluate.plan_seed_chunk(config, eval_one, state, shape) == 2  # the largest chunk whose program fits


class _SeedScale(NamedTuple):
  factor: jax.Array  # per seed after the seed vmap


def _seed_scaled(tx):
  """`tx` followed by a per-seed multiplier of the update (an extra learning-rate factor that lives in opt_state)."""
  scale = optax.GradientTransformation(
    lambda params: _SeedScale(jnp.ones((), jnp.float32)),
    lambda updates, state, params=None: (jax.tree.map(lambda u: u * state.factor, updates), state),
  )
  return optax.chain(tx, scale)


def test_a_diverged_seed_is_flagged_scored_nan_and_left_out_of_the_report(tmp_path, synthetic_dir, monkeypatch):
  """Seed 1 of 3 trains with a learning rate 1e30 times the protocol's (the others with the protocol's).

  A config has one learning rate for all seeds (they are one vmapped program), so the test gives seed 1 its own
  factor through the optimiser state, which is per seed: the closest a run can come to 'one seed with an absurd
  learning rate'. The run then goes through training, evaluation and the report like any other.
  """
  from leut import rules
  from leut.train import milestones

  real_make, real_build = rules.make, milestones.build

  def make(name, hparams=None, **kw):
    rule, tx = real_make(name, hparams, **kw)
    return rule, _seed_scaled(tx)

  def build(config, rule_name, data=None):
    rule, trainer = real_build(config, rule_name, data)

    def init_all(keys):
      state = trainer.init_all(keys)
      *rest, scale = state.opt_state
      factor = jnp.where(jnp.arange(keys.shape[0]) == 1, 1e30, 1.0).astype(jnp.float32)
      return state._replace(opt_state=(*rest, _SeedScale(factor)))

    return rule, trainer._replace(init_all=init_all)

  monkeypatch.setattr(rules, "make", make)
  monkeypatch.setattr(milestones, "build", build)
  args = [
    "run",
    "experiments/quickstart.py",
    "--workdir",
    str(tmp_path),
    f"--config.data.synthetic_dir={synthetic_dir}",
  ]
  args += [a for a in TINY if not a.startswith("--config.seeds")]
  args += [
    "--config.rules=backprop",
    "--config.seeds=3",
    "--config.eval.n_boot=50",
    "--config.eval.best_layer_splits=1",
    "--config.eval.partial_controls=pixel",
    "--config.report.figure_formats=png",
  ]
  with pytest.warns(milestones.DivergedSeedWarning, match=r"backprop: seed\(s\) \[1\] diverged"):
    assert cli.main(args) == 0

  log = pd.read_json(tmp_path / "metrics.jsonl", lines=True)
  assert log.set_index(["seed", "epoch"]).diverged.to_dict() == {(s, e): s == 1 for s in range(3) for e in (1, 2)}
  assert np.isfinite(log[log.seed != 1].train_loss).all()

  res = tmp_path / "results"
  rsa = pd.read_csv(res / "rsa.csv")
  bad = (rsa.seed == 1) & (rsa.epoch > 0)
  assert rsa[bad].rho.isna().all() and set(rsa[bad].note) <= {"non_finite_features", "non_finite_parameters"}
  assert "non_finite_features" in set(rsa[bad].note)
  assert rsa[~bad].rho.notna().all() and rsa[~bad].note.isna().all()
  acc = pd.read_csv(res / "accuracy.csv")
  sick = (acc.seed == 1) & (acc.epoch > 0)
  assert acc[sick].accuracy.isna().all() and (acc[sick].note == "non_finite_logits").all()
  assert acc[~sick].accuracy.notna().all()
  part = pd.read_csv(res / "partial.csv")
  assert part[(part.seed == 1) & (part.epoch > 0)].rho_partial.isna().all()
  assert part[(part.seed != 1)].rho_partial.notna().all()
  boot = pd.read_csv(res / "bootstrap.csv")
  assert boot.rho.notna().all() and (boot.n_undefined == 0).all()  # the bootstrap averages the two healthy seeds
  cv = pd.read_csv(res / "best_layer_cv.csv")
  assert cv[(cv.seed == 1) & (cv.epoch > 0)].note.eq("non_finite_features").all()

  # the report leaves seed 1 out of every per-seed statistic at epochs 1 and 2, and says so
  align = pd.read_csv(res / "alignment.csv").set_index("epoch")
  assert (align.loc[[1, 2], "n"] == 2).all() and (align.loc[[1, 2], "n_excluded"] == 1).all()
  assert (align.loc[0, "n"] == 3).all() and (align.loc[0, "n_excluded"] == 0).all()
  tests = pd.read_csv(res / "tests_vs_untrained.csv")
  assert (tests.n_seeds == 2).all() and (tests.n_excluded == 1).all()
  excluded = pd.read_csv(res / "excluded_seeds.csv", dtype={"seeds": str})
  out = excluded[excluded.n_excluded > 0]
  assert set(out.epoch) == {1, 2} and (out.seeds == "1").all() and (out.n_seeds == 3).all()
  assert out.reasons.str.contains("non_finite").all()
  summary = (tmp_path / "summary.md").read_text()
  assert "Seeds left out: in 8 of 12 headline conditions" in summary  # 4 ROIs x epochs 1, 2 of 3 epochs
  assert "Source: `results/excluded_seeds.csv` where n_excluded=1 or more" in summary


@pytest.fixture(scope="module")
def tiny_wd(tmp_path_factory, synthetic_dir):
  """The report tests' tiny run (untrained + backprop, 5 seeds, milestones 0 1 2, 40 stimuli at 32 px)."""
  from tests.report.conftest import tiny_workdir_path

  return tiny_workdir_path(tmp_path_factory, synthetic_dir)


def test_each_model_rdm_is_built_and_ranked_once_per_checkpoint_layer_resolution_and_arm(
  tiny_wd, tmp_path, monkeypatch
):
  """Every statistic (RSA rows, partial RSA, bootstrap, CV best layer) at every milestone: one RDM per condition; the
  scores on all pairs and the model-to-model analyses: one ranking of it on all pairs."""
  import shutil

  from leut import config as config_lib
  from leut import experiment, rsa
  from leut.scoring import model_similarity

  wd = tmp_path / "wd"
  shutil.copytree(tiny_wd, wd)
  stats = ["--config.eval.upsampled=True", "--config.eval.stats_epochs=all", "--config.eval.n_boot=20"]
  config = cli._workdir_config(wd, [*stats, "--config.eval.best_layer_splits=1"])
  paths = experiment.resolve_data(config)
  inputs = experiment.load_eval_inputs(config, paths, progress=False)
  built = []
  real_rdm = rsa.rdm

  def counting_rdm(feats, metric="correlation"):
    if np.ndim(feats) == 3:  # N seeds x S stimuli x U units: a model RDM (control RDMs are S x F)
      built.append(np.shape(feats))
    return real_rdm(feats, metric)

  monkeypatch.setattr(rsa, "rdm", counting_rdm)
  ranked = []  # the kernel of every all-pairs ranking of model RDMs

  def counting(kernel, name, all_pairs):
    def call(model_NxP, *args, **kwargs):
      if all_pairs(*args):
        ranked.append(name)
      return kernel(model_NxP, *args, **kwargs)

    return call

  def every_weight_one(targets):
    return bool(np.all(np.asarray(targets.weights_P) == 1))

  for module, name, all_pairs in (
    (evaluate, "score_rdms", every_weight_one),
    (evaluate, "score_and_rank_rdms", every_weight_one),
    (model_similarity, "standardised_ranks", lambda: True),
  ):
    if hasattr(module, name):  # score_and_rank_rdms: since the ranks are shared
      monkeypatch.setattr(module, name, counting(getattr(module, name), name, all_pairs))
  tables = experiment.evaluate_lib.evaluate_all(config, wd, inputs, progress=False)
  checkpoints = sum(len(config_lib.milestone_epochs(config, r)) for r in config.rules)
  layers = tables["rsa"].layer.nunique()
  conditions = len(inputs.stimuli)
  assert (checkpoints, layers, conditions) == (4, 4, 2)
  assert len(built) == checkpoints * layers * conditions  # 88 before issue 16 (score, partial, bootstrap, CV)
  # 64 before: score_rdms on all pairs, then model_similarity.standardised_ranks again
  assert ranked == ["score_and_rank_rdms"] * (checkpoints * layers * conditions)
  # every statistic was computed from them, the model-to-model analyses and the two-level bootstrap too
  assert {"partial", "bootstrap", "best_layer_cv", "model_similarity", "two_level_bootstrap"} <= set(tables)


def test_evaluate_needs_no_training_images(tiny_wd, synthetic_dir, tmp_path):
  """`leut evaluate` on a copy of a workdir whose dataset has lost its five CIFAR training batches: restore targets
  come from the config, so the scores equal those of the run that trained the checkpoints."""
  import json
  import shutil

  data = tmp_path / "data"
  shutil.copytree(synthetic_dir, data)
  batches = sorted(data.glob("cifar/*/data_batch_*"))
  assert len(batches) == 5
  for f in batches:
    f.unlink()
  wd = tmp_path / "wd"
  shutil.copytree(tiny_wd, wd, ignore=shutil.ignore_patterns("results", "figures", "summary.md"))
  record = json.loads((wd / "config.json").read_text())
  record["data"]["synthetic_dir"] = str(data)  # the workdir's data now lives where no training image is
  (wd / "config.json").write_text(json.dumps(record))
  assert cli.main(["evaluate", "--workdir", str(wd), "--no-progress"]) == 0
  got = pd.read_csv(wd / "results" / "rsa.csv")
  want = pd.read_csv(tiny_wd / "results" / "rsa.csv")
  np.testing.assert_allclose(got.rho, want.rho, atol=1e-6)
  acc = pd.read_csv(wd / "results" / "accuracy.csv")
  pd.testing.assert_series_equal(acc.accuracy, pd.read_csv(tiny_wd / "results" / "accuracy.csv").accuracy)


def test_readouts_are_recorded_in_every_row_and_change_only_what_they_read(tiny_wd, tmp_path):
  """flatten / pca read the whole conv maps (different scores), leave fc1 (16 units <= readout_dims) as it is under
  flatten, and name themselves in every score row."""
  import shutil

  from leut import experiment

  wd = tmp_path / "wd"
  shutil.copytree(tiny_wd, wd)
  common = ["--config.eval.n_boot=20", "--config.eval.best_layer_splits=1", "--config.eval.readout_dims=64"]
  tables = {}
  for how in ("mean", "flatten", "pca"):
    config = cli._workdir_config(wd, [*common, f"--config.eval.readout={how}"])
    inputs = experiment.load_eval_inputs(config, experiment.resolve_data(config), progress=False)
    tables[how] = experiment.evaluate_lib.evaluate_all(config, wd, inputs, progress=False)
    for name in ("rsa", "partial", "bootstrap", "best_layer_cv"):
      assert (tables[how][name].readout == how).all(), (how, name)
  mean, flat, pca = (tables[h]["rsa"] for h in ("mean", "flatten", "pca"))
  np.testing.assert_allclose(mean.rho, pd.read_csv(tiny_wd / "results" / "rsa.csv").rho, atol=1e-6)  # published
  conv = (mean.layer == "conv1") & mean.note.eq("")
  assert np.abs(flat.rho[conv] - mean.rho[conv]).max() > 1e-3
  assert np.abs(pca.rho[conv] - mean.rho[conv]).max() > 1e-3
  fc = mean.layer == "fc1"
  np.testing.assert_allclose(flat.rho[fc], mean.rho[fc], atol=1e-5)
  # PCA keeps every component here (40 stimuli, 39 components <= readout_components): the same distances as the
  # flattened map itself, so its correlation-RDM scores differ from flatten's only through the projection
  assert pca.rho.notna().sum() == mean.rho.notna().sum()


def test_response_metrics_without_responses_in_the_inputs_are_one_error(tmp_path):
  from leut.errors import ConfigError
  from tests.helpers import tiny_config

  config = tiny_config(**{"eval.metrics": ["rsa", "encoding"]})
  inputs = evaluate.EvalInputs(brain=None, stimuli={}, test_images=None, test_labels=None)
  with pytest.raises(ConfigError, match=r"eval.metrics \['encoding'\] need the brain responses.*load_eval_inputs"):
    evaluate.evaluate_all(config, tmp_path, inputs, progress=False)
