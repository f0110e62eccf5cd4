"""TVSD normalised MUA (synthetic release in the real layout) against direct h5py reads, the electrode map, the
simulated ground truth, and the documented errors."""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest
from scipy.stats import spearmanr

from leut.data.errors import DataFormatError, MissingDatasetError
from leut.data.matlab_files import read_mat, write_mat_v73
from leut.data.simulated_brain import ground_truth_rdms
from leut.data.synthetic import things_world
from leut.data.synthetic_macaque import write_tvsd
from leut.data.tvsd import load_tvsd


@pytest.fixture(scope="module")
def release(synthetic_dir, tmp_path_factory):
  t = dict(n_concepts=120, images_per_concept=3, n_test_images=12, seed=0)  # the synthetic default's world
  world = things_world(**t)
  test = [s for s, is_test in zip(world.stimuli, world.is_test_N) if is_test]
  return write_tvsd(tmp_path_factory.mktemp("tvsd"), synthetic_dir / "things_fmri", test), synthetic_dir


def test_reads_mua_in_the_documented_layout(release):
  root, synthetic = release
  data = load_tvsd(root, synthetic / "things_fmri", stimuli="all")
  with h5py.File(root / "monkeyF" / "THINGS_normMUA.mat", "r") as f:
    train, test = f["train_MUA"][()].T, f["test_MUA"][()].T  # stored column-major: (stimuli, electrodes)
    reliab = f["reliab"][()].T.astype(np.float64).mean(axis=1)
  assert train.shape == (1024, 360) and test.shape == (1024, 12)
  it_f = data.mask("IT", "monkeyF")
  assert list(data.neuroids.neuroid_id[it_f])[:2] == ["monkeyF_513", "monkeyF_514"] and it_f.sum() == 320
  np.testing.assert_array_equal(data.responses_SxN[:, it_f], np.concatenate([train, test], 1)[512:832].T)
  np.testing.assert_allclose(data.neuroids.reliab[it_f], reliab[512:832], rtol=1e-6)
  assert list(data.split_S).count("test") == 12 and data.split_S[0] == "train"
  assert data.stimuli[0] == "disc00_01s.jpg" and data.concepts[0] == "disc00"
  assert data.mask("V4", "monkeyN").sum() == 256 and data.mask("V4", "monkeyF").sum() == 192
  assert data.load_images_01(data.stimuli[:1], 32).shape == (1, 32, 32, 3)


def test_test_split_recovers_the_simulated_areas(release):
  root, synthetic = release
  data = load_tvsd(root, synthetic / "things_fmri")
  assert len(data.stimuli) == 12 and data.split_S is None
  dead = data.neuroids.reliability < 0.3  # electrodes simulated without a visual response
  assert 0.2 < dead.mean() < 0.45
  brain = data.to_brain_data(min_reliability=0.3)
  truth = ground_truth_rdms(root, brain.stimuli, ("V1", "V4", "IT"))
  iu = np.triu_indices(12, 1)
  rho = lambda a, b: spearmanr(a[iu], b[iu])[0]
  for sub in brain.subjects:
    fit = {(roi, model): rho(brain.rdm(roi, sub), truth[model]) for roi in brain.rois for model in brain.rois}
    assert fit["V1", "V1"] > 0.45 and fit["V1", "V1"] > fit["V1", "IT"] + 0.3  # V1 and V4 models overlap
    assert fit["V4", "V4"] > max(fit["V4", "V1"], fit["V4", "IT"]) + 0.3
    assert fit["IT", "IT"] > max(fit["IT", "V1"], fit["IT", "V4"]) + 0.3


def test_errors_name_the_file_and_the_problem(release, tmp_path):
  root, synthetic = release
  with pytest.raises(MissingDatasetError, match="monkeyF/THINGS_normMUA.mat not found"):
    load_tvsd(tmp_path)
  broken = tmp_path / "broken"
  shutil.copytree(root, broken)
  mua = broken / "monkeyN" / "THINGS_normMUA.mat"
  raw = read_mat(mua, ["train_MUA", "test_MUA", "test_MUA_reps", "reliab", "oracle"])
  raw["train_MUA"] = raw["train_MUA"][:, :-1]
  write_mat_v73(mua, raw)
  with pytest.raises(DataFormatError, match="monkeyN/THINGS_normMUA.mat: train_MUA has 359 stimuli but the image log"):
    load_tvsd(broken, stimuli="train")
  raw["train_MUA"] = np.zeros((1000, 360), np.float32)
  write_mat_v73(mua, raw)
  with pytest.raises(DataFormatError, match="train_MUA has shape \\(1000, 360\\); expected 1024 electrodes"):
    load_tvsd(broken, stimuli="train")
