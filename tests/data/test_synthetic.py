"""The synthetic releases: real on-disk layouts, idempotent defaults and known brain structure."""

from __future__ import annotations

import json
import pickle

import h5py
import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from leut.data import ground_truth_rdms, load_brain_rdms, load_stimulus_images, synthetic
from leut.data.procedural import CLASS_NAMES
from leut.data.simulated_brain import correlation_rdm, gabor_energy
from leut.data.things_images import raw_images_01

SMALL = dict(
  n_concepts=60,
  images_per_concept=3,
  n_test_images=10,
  test_reps=4,
  image_px=64,
  n_subjects=3,
  voxels_per_roi=100,
  n_sessions=2,
  runs_per_session=5,
  seed=0,
)


@pytest.fixture(scope="module")
def release(tmp_path_factory):
  return synthetic.write_things_fmri(tmp_path_factory.mktemp("things"), **SMALL)


def test_figshare_layout(release):
  d = release / "betas_csv"
  stim = pd.read_csv(d / "sub-01_StimulusMetadata.csv")
  vox = pd.read_csv(d / "sub-01_VoxelMetadata.csv")
  assert list(stim.columns) == ["trial_type", "session", "run", "subject_id", "trial_id", "stimulus", "concept"]
  assert list(vox.columns[:5]) == ["voxel_id", "subject_id", "voxel_x", "voxel_y", "voxel_z"]
  assert {"V1", "V2", "V3", "hV4", "lLOC", "rLOC", "IT", "lFFA"} <= set(vox.columns)
  assert (vox[["V1", "V2", "V3", "hV4", "lLOC", "rLOC", "IT"]].sum(axis=1) == 0).any()  # voxels in no ROI
  with h5py.File(d / "sub-01_ResponseData.h5", "r") as f:
    g = f["ResponseData"]
    assert g["block0_values"].shape == (len(vox), len(stim))
    assert list(pickle.loads(g["block0_items"][0].tobytes())) == list(range(len(stim)))
    np.testing.assert_array_equal(g["block1_values"][:, 0], vox["voxel_id"])
  assert len(stim) == 60 * 3 + 10 * 4
  assert (stim[stim.trial_type == "test"].groupby("stimulus").size() == 4).all()
  first = stim[stim.stimulus.str.endswith("_01s.jpg")]
  assert len(first) == 60 and first.session.nunique() == 1 and first.run.nunique() == 5
  assert stim.groupby(["session", "run"]).trial_id.apply(lambda t: list(t) == list(range(len(t)))).all()
  stim3 = pd.read_csv(d / "sub-03_StimulusMetadata.csv")
  assert sorted(stim3.stimulus) == sorted(stim.stimulus) and list(stim3.stimulus) != list(stim.stimulus)
  img = load_stimulus_images(release, ["disc00_01s.jpg"], px=32)
  assert img.shape == (1, 32, 32, 3)


def test_pipeline_recovers_the_simulated_structure(release):
  brain = load_brain_rdms(release, rois=("V1", "LOC", "IT"), progress=False)
  assert len(brain.stimuli) == 60 and brain.stimuli[0] == "bars00_01s.jpg"
  gt = ground_truth_rdms(release, brain.stimuli, brain.rois)
  iu = np.triu_indices(60, 1)
  cls = np.array([c.rstrip("0123456789") for c in brain.concepts])
  category = (cls[:, None] != cls[None, :]).astype(float)[iu]
  rho = lambda a, b: spearmanr(a[iu] if a.ndim == 2 else a, b[iu] if b.ndim == 2 else b)[0]
  # ground truth: IT is categorical, V1 is not (0.58 is the maximum Spearman r against a
  # 0/1 RDM with 10% same-class pairs)
  assert rho(gt["IT"], category) > 0.4 and abs(rho(gt["V1"], category)) < 0.1
  # V1 truth is a Gabor-energy model of the images
  gabor = correlation_rdm(gabor_energy(raw_images_01(release, brain.stimuli, px=64)))
  assert rho(gt["V1"], gabor) > 0.8
  for sub in brain.subjects:  # measured RDMs: each ROI is closest to its own truth
    m = {r: brain.rdm(r, sub).astype(np.float64) for r in brain.rois}
    assert rho(m["V1"], gt["V1"]) > rho(m["V1"], gt["IT"]) + 0.2
    assert rho(m["IT"], gt["IT"]) > rho(m["IT"], gt["V1"]) + 0.2
    assert rho(m["IT"], category) > rho(m["V1"], category) + 0.2
  fit = [rho(brain.rdm("IT", s), gt["IT"]) for s in brain.subjects]
  assert fit[2] < min(fit[:2])  # sub-03 is the noisiest


def test_ensure_default_is_idempotent_and_regenerates(tmp_path, monkeypatch):
  params = json.loads(json.dumps(synthetic.DEFAULT_PARAMS))
  params["cifar"].update(n_train=20, n_test=10)
  params["things"].update(n_concepts=20, n_test_images=2, image_px=32, voxels_per_roi=20)
  monkeypatch.setattr(synthetic, "DEFAULT_PARAMS", params)
  d = synthetic.ensure_default(tmp_path)
  marker = tmp_path / "leut_default.json"
  stamp = marker.stat().st_mtime_ns
  assert synthetic.ensure_default(tmp_path) == d and marker.stat().st_mtime_ns == stamp
  (d.things_fmri_dir / "stale.txt").write_text("x")
  params["things"]["n_concepts"] = 30
  d2 = synthetic.ensure_default(tmp_path)
  assert not (d2.things_fmri_dir / "stale.txt").exists()
  assert len(load_brain_rdms(d2.things_fmri_dir, rois=("IT",), progress=False).stimuli) == 30
  assert (d2.things_images_dir / "disc00" / "disc00_01s.jpg").is_file()


def test_default_sizes_are_declared():
  t = synthetic.DEFAULT_PARAMS["things"]
  assert t["n_concepts"] == 120 and synthetic.DEFAULT_PARAMS["cifar"]["n_train"] == 5000
  assert len(CLASS_NAMES) == 10 and len(set(CLASS_NAMES)) == 10


def test_unused_concepts_have_images_but_no_trial_and_leave_the_release_unchanged(tmp_path):
  """Concepts outside the fMRI experiment (paper C's BatchNorm calibration source) get images in the real
  object_images/<concept>/<concept>_NNs.jpg layout, no trial, and change none of the release's other files."""
  small = dict(SMALL, n_concepts=10, n_test_images=2, image_px=32, voxels_per_roi=10, n_subjects=1)
  plain = synthetic.write_things_fmri(tmp_path / "plain", **small)
  extra = synthetic.write_things_fmri(tmp_path / "extra", **small, n_unused_concepts=3, images_per_unused_concept=2)
  files = lambda root: {p.relative_to(root): p.read_bytes() for p in root.rglob("*") if p.is_file()}  # noqa: E731
  a, b = files(plain), files(extra)
  assert all(b[k] == v for k, v in a.items())
  added = sorted(str(k) for k in set(b) - set(a))
  assert added == [f"object_images/{c}/{c}_{i:02d}s.jpg" for c in ("disc01", "square01", "triangle01") for i in (1, 2)]
  shown = set(pd.read_csv(extra / "betas_csv" / "sub-01_StimulusMetadata.csv").concept)
  assert {"disc01", "square01", "triangle01"}.isdisjoint(shown) and len(shown) == 10
