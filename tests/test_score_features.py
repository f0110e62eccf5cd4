"""`leut score-features`: external features scored against the brain data equal scipy; mismatched names are refused."""

import h5py
import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import pdist, squareform
from scipy.stats import spearmanr

from leut import cli, score_features
from leut.data.precomputed_rdms import write_precomputed_rdms
from leut.data.things_fmri import BrainData
from leut.errors import StimulusMismatchError

S = 12
STIMULI = tuple(f"thing{i:02d}_01b.jpg" for i in range(S))


@pytest.fixture(scope="module")
def brain_dir(tmp_path_factory):
  """Two ROIs x two subjects of random correlation-distance RDMs, written as precomputed brain RDMs."""
  rng = np.random.default_rng(0)
  rdms = np.stack(
    [np.stack([squareform(pdist(rng.normal(size=(S, 5)), "correlation")) for _ in range(2)]) for _ in range(2)]
  ).astype(np.float32)
  runs = np.tile(-(1 + np.arange(S)), (2, 1))
  brain = BrainData(STIMULI, tuple(s.split("_")[0] for s in STIMULI), ("sub-01", "sub-02"), ("V1", "IT"), rdms, runs)
  return write_precomputed_rdms(brain, tmp_path_factory.mktemp("rdms")), rdms


def _features():
  rng = np.random.default_rng(1)
  return {"layer_a": rng.normal(size=(S, 7)), "layer_b": rng.normal(size=(S, 3, 2, 2))}  # b: flattened to 12 units


def _write(path, stimuli, feats):
  if path.suffix == ".npz":
    np.savez(path, stimuli=np.asarray(stimuli), **feats)
  else:
    with h5py.File(path, "w") as f:
      f["stimuli"] = np.asarray([s.encode() for s in stimuli])
      for k, v in feats.items():
        f[k] = v


def _args(features, wd, brain_rdms_dir, *extra):
  return [
    "score-features",
    str(features),
    "--workdir",
    str(wd),
    "--config.data.source=files",
    f"--config.data.brain_rdms_dir={brain_rdms_dir}",
    "--config.data.rois=V1,IT",
    "--config.eval.pairs=all",
    "--config.eval.partial_controls=",
    "--no-progress",
    *extra,
  ]


@pytest.mark.parametrize("suffix", [".npz", ".h5"])
def test_score_features_equals_scipy_spearman_of_pdist_rdms(brain_dir, tmp_path, suffix):
  folder, rdms = brain_dir
  feats = _features()
  order = np.random.default_rng(2).permutation(S)  # the file's rows in another order than the brain data's
  path = tmp_path / f"torchnet{suffix}"
  _write(path, [STIMULI[i] for i in order], {k: v[order] for k, v in feats.items()})
  wd = tmp_path / "wd"
  extra = ["--name", "torchnet", "--config.eval.n_boot=50", "--config.eval.best_layer_splits=2"]
  assert cli.main(_args(path, wd, folder, *extra)) == 0
  got = pd.read_csv(wd / "results" / "rsa.csv")
  assert set(got.rule) == {"torchnet"} and set(got.arm) == {"external"}
  assert len(got) == 2 * 2 * 3  # layers x ROIs x (2 subjects + mean)
  for layer, f in feats.items():
    model = pdist(f.reshape(S, -1), "correlation")
    for r, roi in enumerate(("V1", "IT")):
      brains = {"sub-01": rdms[r, 0], "sub-02": rdms[r, 1], "mean": rdms[r].astype(np.float64).mean(0)}
      for subj, b in brains.items():
        want = spearmanr(model, squareform(b, checks=False)).statistic
        row = got[(got.layer == layer) & (got.roi == roi) & (got.subject == subj)]
        np.testing.assert_allclose(row.rho.to_numpy(), [want], atol=1e-5, err_msg=f"{layer} {roi} {subj}")
  boot = pd.read_csv(wd / "results" / "bootstrap.csv")
  assert len(boot) == 2 * 2 and (boot.rule == "torchnet").all()  # every layer x ROI
  assert (pd.read_csv(wd / "results" / "best_layer_cv.csv").rule == "torchnet").all()
  # scoring again under the same name replaces its rows instead of adding to them
  assert cli.main(_args(path, wd, folder, *extra)) == 0
  assert len(pd.read_csv(wd / "results" / "rsa.csv")) == len(got)


def test_mismatched_stimulus_names_are_refused_in_one_error_listing_them(brain_dir, tmp_path, capsys):
  folder, _ = brain_dir
  feats = {k: v[:-1] for k, v in _features().items()}
  names = list(STIMULI[:-1])
  names[0] = "bogus_01b.jpg"  # unknown; STIMULI[0] and STIMULI[-1] are then missing
  path = tmp_path / "bad.npz"
  _write(path, names, feats)
  assert cli.main(_args(path, tmp_path / "wd", folder)) == 2
  err = capsys.readouterr().err
  assert "bogus_01b.jpg" in err and STIMULI[0] in err and STIMULI[-1] in err and len(err.strip().splitlines()) == 1
  with pytest.raises(StimulusMismatchError, match="listed twice: 'thing01_01b.jpg'"):
    score_features.brain_order([STIMULI[1], *STIMULI], STIMULI, "f.npz")


def test_cka_and_encoding_of_external_features_follow_eval_metrics(tmp_path, synthetic_dir):
  """A layer that is the V1 responses of sub-01 (plus a little noise) and a layer of noise, scored with
  eval.metrics=rsa,cka,encoding against the synthetic THINGS-fMRI release: CKA equals a float64 NumPy linear CKA of
  the same features and responses, and the encoding model predicts the copied responses and not the noise."""
  from leut import experiment
  from leut.defaults import protocol_config

  config = protocol_config()
  config.data.synthetic_dir = str(synthetic_dir)
  config.data.n_stimuli = 40
  config.eval.metrics = ["rsa", "cka", "encoding"]
  brain, resp = experiment.load_brain_and_responses(config, experiment.resolve_data(config, brain_only=True))
  rng = np.random.default_rng(5)
  v1 = resp.select("V1", "sub-01")
  v1 = v1[:, np.isfinite(v1).all(0)]
  feats = {"copy": v1 + 0.01 * v1.std() * rng.normal(size=v1.shape), "noise": rng.normal(size=(len(v1), 20))}
  path = tmp_path / "ext.npz"
  _write(path, list(brain.stimuli), feats)
  wd = tmp_path / "wd"
  args = [
    "score-features", str(path), "--workdir", str(wd), "--name", "ext",
    f"--config.data.synthetic_dir={synthetic_dir}", "--config.data.n_stimuli=40",
    "--config.eval.metrics=rsa,cka,encoding", "--config.eval.n_boot=0", "--config.eval.best_layer_splits=0",
    "--config.eval.partial_controls=", "--no-progress",
  ]  # fmt: skip
  assert cli.main(args) == 0

  cka = pd.read_csv(wd / "results" / "cka.csv")
  assert set(cka.rule) == {"ext"} and set(cka.arm) == {"external"} and set(cka.readout) == {"as_given"}
  assert len(cka) == 2 * len(resp.rois) * len(resp.subjects) * 2  # layers x ROIs x subjects x estimators
  for row in cka[cka.estimator == "biased"].itertuples():
    y = resp.select(row.roi, row.subject)
    y = y[:, np.isfinite(y).all(0)].astype(np.float64)
    x = feats[row.layer].astype(np.float64)
    x, y = x - x.mean(0), y - y.mean(0)
    want = np.linalg.norm(x.T @ y) ** 2 / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y))
    np.testing.assert_allclose(row.cka, want, atol=1e-4, err_msg=f"{row.layer} {row.roi} {row.subject}")

  enc = pd.read_csv(wd / "results" / "encoding.csv").set_index(["layer", "roi", "subject"])
  assert set(enc.index.get_level_values("layer")) == {"copy", "noise"}
  # more voxels than training stimuli: ridge predicts a held-out response well, not perfectly, from all the others
  assert enc.loc[("copy", "V1", "sub-01"), "r_raw"] > 0.5
  assert abs(enc.loc[("noise", "V1", "sub-01"), "r_raw"]) < 0.3
  assert enc.loc[("copy", "V1", "sub-01"), "score"] > enc.loc[("noise", "V1", "sub-01"), "score"]
