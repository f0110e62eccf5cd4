"""Paper C's BatchNorm calibration factorial: the cumulative average against a float64 NumPy forward pass, weights
untouched, config errors, the THINGS source's concepts, and one row set per source on the shared tiny evaluation."""

import shutil

import jax
import numpy as np
import pandas as pd
import pytest

from leut import checks, cli, experiment
from leut.errors import ConfigError
from leut.models import cnn, layers
from leut.scoring import bn_calibration
from tests.helpers import tiny_config

WIDTHS = (4, 8, 8)


def _tiny_network(n_seeds=2):
  net = cnn.network(WIDTHS, 16)
  keys = jax.random.split(jax.random.key(3), n_seeds)
  params, state = jax.vmap(net.init)(keys)
  # non-trivial BN affines, so the second and third layers' statistics depend on them
  for i, bn in enumerate(("bn1", "bn2", "bn3")):
    params[bn] = {
      "scale": params[bn]["scale"] * (1.0 + 0.1 * (i + 1)),
      "bias": params[bn]["bias"] + 0.05 * (i + 1),
    }
  return net, params, state


def _conv3x3_f64(x_NxHxWxC, w_3x3xCxO):
  """'SAME' 3x3 cross-correlation as a sum over the nine shifted inputs (float64)."""
  n, h, w, _ = x_NxHxWxC.shape
  pad = np.pad(x_NxHxWxC, ((0, 0), (1, 1), (1, 1), (0, 0)))
  out = np.zeros((n, h, w, w_3x3xCxO.shape[-1]))
  for dy in range(3):
    for dx in range(3):
      out += np.tensordot(pad[:, dy : dy + h, dx : dx + w, :], w_3x3xCxO[dy, dx], axes=([3], [0]))
  return out


def _reference_statistics(params, seed, batches):
  """Per BatchNorm: the average over batches of the batch mean and unbiased variance of its input in training mode
  (the layers below normalised by their own batch statistics), in float64."""
  sums = {}
  for x in batches:
    h = np.asarray(x, np.float64)
    for i in (1, 2, 3):
      z = _conv3x3_f64(h, np.asarray(params[f"conv{i}"]["kernel"][seed], np.float64))
      m = z.shape[0] * z.shape[1] * z.shape[2]
      mean = z.reshape(-1, z.shape[-1]).mean(0)
      var_biased = ((z - mean) ** 2).reshape(-1, z.shape[-1]).sum(0) / m
      var_unbiased = np.var(z.reshape(-1, z.shape[-1]), axis=0, ddof=1)
      s = sums.setdefault(f"bn{i}", [0.0, 0.0])
      s[0], s[1] = s[0] + mean, s[1] + var_unbiased
      gamma = np.asarray(params[f"bn{i}"]["scale"][seed], np.float64)
      beta = np.asarray(params[f"bn{i}"]["bias"][seed], np.float64)
      y = np.maximum((z - mean) / np.sqrt(var_biased + layers.BN_EPS) * gamma + beta, 0.0)
      n, hh, ww, c = y.shape
      h = y.reshape(n, hh // 2, 2, ww // 2, 2, c).max(axis=(2, 4))
  return {bn: (s[0] / len(batches), s[1] / len(batches)) for bn, s in sums.items()}


def test_cumulative_average_equals_a_float64_numpy_forward_pass():
  """running_K = (1/K) Σ_k (μ_k, σ²_k m/(m−1)) per BatchNorm and seed, whatever the reset values (PyTorch's
  momentum=None); the published 0.1 exponential average would weight the last batches ~10x more."""
  net, params, state = _tiny_network()
  rng = np.random.default_rng(0)
  batches = [rng.normal(0.3 * k, 1.0 + 0.5 * k, (6, 16, 16, 3)).astype(np.float32) for k in range(3)]
  state = jax.tree.map(lambda v: v + 7.0, state)  # the reset must discard these
  got = bn_calibration.calibrate(net, params, state, iter(batches))
  for seed in range(2):
    want = _reference_statistics(params, seed, batches)
    for bn, (mean, var) in want.items():
      np.testing.assert_allclose(np.asarray(got[bn]["mean"][seed]), mean, rtol=2e-5, atol=2e-5)
      np.testing.assert_allclose(np.asarray(got[bn]["var"][seed]), var, rtol=2e-5, atol=2e-5)
  # the batches differ, so an exponential average (or the last batch alone) would not match the plain average
  last = _reference_statistics(params, 0, batches[-1:])
  assert np.abs(np.asarray(got["bn1"]["mean"][0]) - last["bn1"][0]).max() > 0.1


def test_calibration_changes_running_statistics_only_and_checks_the_weights():
  net, params, state = _tiny_network()
  before = jax.tree.map(np.array, params)
  digest = bn_calibration.weights_digest(params)
  x = np.random.default_rng(1).normal(size=(6, 16, 16, 3)).astype(np.float32)  # the shapes above: one compile
  new_state = bn_calibration.calibrate(net, params, state, [x, x])
  assert jax.tree.structure(new_state) == jax.tree.structure(state)
  jax.tree.map(np.testing.assert_array_equal, before, jax.tree.map(np.array, params))
  assert bn_calibration.weights_digest(params) == digest
  changed = dict(params, conv1={"kernel": params["conv1"]["kernel"].at[0, 0, 0, 0, 0].add(1e-7)})
  with pytest.raises(RuntimeError, match="changed the network's weights"):
    bn_calibration.check_weights_unchanged(digest, changed)


@pytest.mark.parametrize(
  "field, value, message",
  [
    ("eval.bn_calibration", ["cifar32", "imagenet"], r"unknown entries \['imagenet'\]; allowed: \['cifar32', "),
    ("eval.bn_calibration_checkpoints", "trained", r"must be one of \['untrained', 'all'\]"),
    ("eval.bn_calibration_batches", 0, "must be at least 1"),
    ("rules", ["untrained", "stdp_published"], "stdp_published.*cannot be calibrated"),
    ("model.name", "flax", "flax model"),
  ],
)
def test_config_errors_name_the_field_and_the_valid_values(field, value, message):
  config = tiny_config(**{"eval.bn_calibration": ["things32"]})
  node = config
  *parents, leaf = field.split(".")
  for p in parents:
    node = node[p]
  with node.unlocked():
    node[leaf] = value
  with pytest.raises(ConfigError, match=message):
    checks.check_config(config)


def test_the_published_path_is_the_default():
  config = tiny_config()
  checks.check_config(config)
  assert bn_calibration.configured(config) == [] and not bn_calibration.applies(config, 0)
  rows = [{"rho": 0.1}]
  bn_calibration.label_published(config, rows)
  assert rows == [{"rho": 0.1}]  # no new column on the published tables


def test_the_report_reads_the_published_rows_only():
  """Calibrated rows stay out of the report; rows without the column (`leut score-features` appends such rows to an
  existing rsa.csv) count as published."""
  rsa = pd.DataFrame({"rule": ["a", "a", "b"], "rho": [0.1, 0.2, 0.3], "bn_calibration": ["none", "cifar32", np.nan]})
  kept = bn_calibration.published_rows(rsa)
  assert kept.rho.tolist() == [0.1, 0.3] and "bn_calibration" not in kept
  assert bn_calibration.published_rows(rsa.drop(columns="bn_calibration")).shape == (3, 2)


def test_things_source_holds_only_concepts_without_an_evaluation_stimulus(synthetic_dir):
  from leut.data import things_fmri, things_images

  d = synthetic_dir / "things_fmri"
  stimuli = things_fmri.check_release(d, subjects=None, rois=("V1",), stimuli="per_concept", n_stimuli=None)
  files = bn_calibration.things_calibration_files(d / "object_images", stimuli, 10_000)
  used = {things_images.concept_of(s) for s in stimuli}
  concepts = [f.parent.name for f in files]
  assert files and not used & set(concepts)
  assert len(set(concepts[: len(set(concepts))])) == len(set(concepts))  # round-robin: every concept before repeats


@pytest.fixture(scope="module")
def tiny_wd(tmp_path_factory, synthetic_dir):
  from tests.report.conftest import tiny_workdir_path

  return tiny_workdir_path(tmp_path_factory, synthetic_dir)


def test_each_source_is_its_own_condition_and_the_published_rows_are_unchanged(tiny_wd, tmp_path):
  wd = tmp_path / "wd"
  shutil.copytree(tiny_wd, wd)
  sources = ",".join(bn_calibration.SOURCES)
  overrides = [
    f"--config.eval.bn_calibration={sources}",
    "--config.eval.bn_calibration_checkpoints=all",
    "--config.eval.bn_calibration_batches=3",
    "--config.eval.bn_calibration_batch_size=16",
    "--config.eval.n_boot=0",
    "--config.eval.best_layer_splits=0",
    "--config.eval.partial_controls=[]",
  ]
  config = cli._workdir_config(wd, overrides)
  checks.check_config(config)
  inputs = experiment.load_eval_inputs(config, experiment.resolve_data(config), progress=False)
  tables = experiment.evaluate_lib.evaluate_all(config, wd, inputs, progress=False)
  rsa = tables["rsa"]
  published = rsa[rsa.bn_calibration == "none"].drop(columns="bn_calibration").reset_index(drop=True)
  want = pd.read_csv(tiny_wd / "results" / "rsa.csv")
  got = published[want.columns]
  pd.testing.assert_frame_equal(got.drop(columns="note"), want.drop(columns="note"), check_exact=False, atol=1e-6)
  assert got.note.astype(object).fillna("").tolist() == want.note.astype(object).fillna("").tolist()
  assert bn_calibration.published_rows(rsa).shape == want.shape
  keys = ["rule", "seed", "epoch", "layer", "roi", "subject", "pairs"]
  for source in bn_calibration.SOURCES:
    rows = rsa[rsa.bn_calibration == source].reset_index(drop=True)
    pd.testing.assert_frame_equal(rows[keys], published[keys])  # every checkpoint and condition, once per source
    conv = rows.layer == "conv1"
    assert rows.rho.notna().all() and np.abs(rows.rho[conv] - published.rho[conv]).max() > 1e-4, source
  # the 32-px sources and their evaluation-size versions coincide at a 32-px evaluation (same images, same sizes)
  for a, b in (("cifar32", "cifar_eval_size"), ("things32", "things_eval_size"), ("eval_images32", "eval_images")):
    np.testing.assert_allclose(rsa[rsa.bn_calibration == a].rho, rsa[rsa.bn_calibration == b].rho, atol=1e-6)
  summary = tables["bn_calibration"]
  assert set(summary.bn_calibration) == {"none", *bn_calibration.SOURCES}
  none = summary[summary.bn_calibration == "none"]
  assert (none.delta_vs_published == 0).all() and (none.n == 5).all()
  assert summary.loc[summary.epoch == 0, "change_vs_epoch0"].eq(0).all()
  # the summary's paired delta is the mean over seeds of (mean over subjects of calibrated - published)
  one = dict(rule="backprop", epoch=2, layer="conv1", roi="V1", pairs="all")
  sel = lambda df, src: df[(df.bn_calibration == src) & (df.subject != "mean")].query(  # noqa: E731
    " and ".join(f"{k} == @one['{k}']" for k in one)
  )
  per_seed = sel(rsa, "things32").groupby("seed").rho.mean() - sel(rsa, "none").groupby("seed").rho.mean()
  row = summary[(summary.bn_calibration == "things32")].query(" and ".join(f"{k} == @one['{k}']" for k in one))
  np.testing.assert_allclose(row.delta_vs_published.item(), per_seed.mean(), atol=1e-12)
