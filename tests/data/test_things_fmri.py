"""Brain RDMs against float64 NumPy/SciPy references and the documented error cases."""

from __future__ import annotations

import numpy as np
import pytest
from fmri_release import CONCEPTS, tiny_subject, write_subject
from scipy.spatial.distance import pdist, squareform

from leut.data import DataFormatError, MissingDatasetError, UnknownRoiError, load_brain_rdms
from leut.data.things_fmri import select_stimuli, zscore_voxels


def reference_rdm(betas_VxT, vox, stim, stimuli, roi_cols, *, by_run=False):
  """Independent float64 re-implementation of PROTOCOL §6.5 for one subject and ROI."""
  x = betas_VxT.T.astype(np.float64)
  groups = stim["session"].to_numpy() * 1000 + stim["run"].to_numpy() if by_run else np.zeros(len(x))
  z = np.empty_like(x)
  for g in np.unique(groups):
    r = groups == g
    z[r] = (x[r] - x[r].mean(0)) / (x[r].std(0) + 1e-8)  # np.std is the population SD
  mask = (vox[list(roi_cols)].to_numpy() == 1).any(1)
  pats = np.stack([z[stim["stimulus"].to_numpy() == s][:, mask].mean(0) for s in stimuli])
  return squareform(pdist(pats, "correlation"))


def test_per_concept_selection_is_alphabetically_first_image():
  _, _, stim = tiny_subject(0)
  stimuli, concepts = select_stimuli(stim, "per_concept")
  assert concepts == sorted(CONCEPTS)
  assert stimuli == [f"{c}_01s.jpg" for c in sorted(CONCEPTS)]  # test _14s sorts after _01s
  assert select_stimuli(stim, "per_concept", 3)[0] == stimuli[:3]
  assert select_stimuli(stim, "test")[0] == ["bee_14s.jpg", "egg_14s.jpg"]


@pytest.mark.parametrize("by_run", [False, True])
def test_zscore_matches_float64_reference(by_run):
  rng = np.random.default_rng(0)
  x = rng.normal(5, 3, (60, 7)).astype(np.float32)
  g = np.repeat([1001, 1002, 2001], 20) if by_run else None
  got = zscore_voxels(x.copy(), g, chunk=3)
  ref = np.empty((60, 7))
  for rows in [slice(None)] if g is None else [g == v for v in np.unique(g)]:
    x64 = x[rows].astype(np.float64)
    ref[rows] = (x64 - x64.mean(0)) / (x64.std(0) + 1e-8)
  np.testing.assert_allclose(got, ref, atol=1e-6)


@pytest.mark.parametrize("zscore", ["all", "run"])
def test_brain_rdms_match_pdist_reference(tiny_release, zscore):
  root, subs = tiny_release
  brain = load_brain_rdms(root, rois=("V1", "V4", "LOC", "IT"), zscore=zscore, progress=False)
  assert brain.subjects == ("sub-01", "sub-02")
  assert brain.stimuli == tuple(f"{c}_01s.jpg" for c in sorted(CONCEPTS))
  assert brain.rdms_RxJxSxS.dtype == np.float32
  for r, cols in (("V1", ["V1"]), ("V4", ["hV4"]), ("LOC", ["lLOC", "rLOC"]), ("IT", ["IT"])):
    for sub, (b, v, s) in subs.items():
      ref = reference_rdm(b, v, s, brain.stimuli, cols, by_run=zscore == "run")
      np.testing.assert_allclose(brain.rdm(r, sub), ref, atol=2e-6)
  _, _, stim2 = subs["sub-02"]
  runs = [stim2.loc[stim2.stimulus == s, ["session", "run"]].to_numpy()[0] for s in brain.stimuli]
  np.testing.assert_array_equal(brain.runs_JxS[1], [a * 1000 + b for a, b in runs])


def test_planted_pattern_closed_form(tmp_path):
  # Two voxels, per-concept trials only: after z-scoring, stimulus patterns are 2-D
  # vectors and the correlation distance of 2-vectors is 0 (same sign order) or 2.
  b, v, s = tiny_subject(0, n_voxels=2)
  v[["V1", "V2", "V3", "hV4", "lLOC", "rLOC", "IT"]] = 0
  v["V1"] = 1
  b[0] = np.arange(len(s), dtype=np.float32)
  b[1] = -(np.arange(len(s), dtype=np.float32) ** 2)
  write_subject(tmp_path, "sub-01", b, v, s)
  brain = load_brain_rdms(tmp_path, rois=("V1",), progress=False)
  order = [int(np.flatnonzero(s.stimulus.to_numpy() == st)[0]) for st in brain.stimuli]
  z = (b.T - b.T.mean(0)) / b.T.std(0)
  sign = np.sign(z[order, 0] - z[order, 1])
  np.testing.assert_allclose(brain.rdm("V1", "sub-01"), 1 - np.outer(sign, sign), atol=1e-5)


def test_test_stimuli_are_averaged_over_repetitions(tiny_release):
  root, subs = tiny_release
  brain = load_brain_rdms(root, rois=("IT",), stimuli="test", progress=False)
  assert brain.stimuli == ("bee_14s.jpg", "egg_14s.jpg") and brain.concepts == ("bee", "egg")
  b, v, s = subs["sub-01"]
  np.testing.assert_allclose(brain.rdm("IT", "sub-01"), reference_rdm(b, v, s, brain.stimuli, ["IT"]), atol=2e-6)
  assert len(set(brain.runs_JxS[0])) == 2  # no single run: distinct placeholders


def test_openneuro_naming_and_tsv_give_the_same_rdms(tmp_path, tiny_release):
  root, subs = tiny_release
  for sub, (b, v, s) in subs.items():
    write_subject(
      tmp_path / "on" / "derivatives" / "ICA-betas" / sub / "voxel-metadata",
      sub,
      b,
      v,
      s,
      naming="openneuro",
      ext=".tsv",
    )
  a = load_brain_rdms(root, rois=("V1", "IT"), progress=False)
  c = load_brain_rdms(tmp_path / "on", rois=("V1", "IT"), progress=False)
  assert a.subjects == c.subjects and a.stimuli == c.stimuli
  np.testing.assert_array_equal(a.rdms_RxJxSxS, c.rdms_RxJxSxS)


# ----- errors: each names the file and the problem --------------------------------------------


def test_voxel_table_with_wrong_row_count(tiny_release):
  root, subs = tiny_release
  b, v, s = subs["sub-02"]
  v.iloc[:-1].to_csv(root / "betas_csv" / "sub-02_VoxelMetadata.csv", index=False)
  with pytest.raises(DataFormatError, match=r"sub-02_VoxelMetadata\.csv.*39 rows.*40 voxel rows"):
    load_brain_rdms(root, progress=False)


def test_stimulus_table_with_wrong_row_count(tiny_release):
  root, subs = tiny_release
  b, v, s = subs["sub-01"]
  s.iloc[:-2].to_csv(root / "betas_csv" / "sub-01_StimulusMetadata.csv", index=False)
  with pytest.raises(DataFormatError, match=r"sub-01_StimulusMetadata\.csv.*rows.*trial columns"):
    load_brain_rdms(root, progress=False)


def test_subject_with_another_stimulus_order_than_sub01(tiny_release):
  root, subs = tiny_release
  b, v, s = subs["sub-02"]
  s = s.copy()
  s["stimulus"] = s["stimulus"].str.replace("cat_01s", "cat_00s")  # another first image of 'cat'
  s.to_csv(root / "betas_csv" / "sub-02_StimulusMetadata.csv", index=False)
  with pytest.raises(
    DataFormatError,
    match=r"sub-02_StimulusMetadata\.csv.*mismatched stimulus "
    r"orders.*sub-01.*cat_00s",
  ):
    load_brain_rdms(root, progress=False)


def test_nan_betas_in_selected_voxels(tiny_release):
  root, subs = tiny_release
  b, v, s = subs["sub-02"]
  b = b.copy()
  b[int(np.flatnonzero(v["V1"].to_numpy())[0]), 5] = np.nan
  write_subject(root / "betas_csv", "sub-02", b, v, s)
  with pytest.raises(DataFormatError, match=r"sub-02_ResponseData\.h5.*NaN betas in 1 of"):
    load_brain_rdms(root, rois=("V1",), progress=False)
  # NaNs outside the requested ROIs are never read
  load_brain_rdms(root, rois=("V2",), progress=False)


def test_unknown_roi_names_the_available_columns(tiny_release):
  root, _ = tiny_release
  with pytest.raises(UnknownRoiError, match=r"sub-01_VoxelMetadata\.csv.*'FFA'.*lFFA"):
    load_brain_rdms(root, rois=("V1", "FFA"), progress=False)
  brain = load_brain_rdms(root, rois=("lLOC",), progress=False)  # any column by name
  assert brain.rois == ("lLOC",)


def test_missing_dataset_and_missing_file(tmp_path, tiny_release):
  with pytest.raises(MissingDatasetError, match=r"nope.*figshare.*data\.things_fmri_dir"):
    load_brain_rdms(tmp_path / "nope", progress=False)
  root, _ = tiny_release
  (root / "betas_csv" / "sub-02_StimulusMetadata.csv").unlink()
  with pytest.raises(MissingDatasetError, match=r"sub-02_StimulusMetadata\.csv"):
    load_brain_rdms(root, progress=False)
  with pytest.raises(MissingDatasetError, match=r"sub-05"):
    load_brain_rdms(root, subjects=["sub-05"], progress=False)


def test_saved_index_column_must_be_0_to_n(tiny_release):
  root, subs = tiny_release
  b, v, s = subs["sub-01"]
  s.to_csv(root / "betas_csv" / "sub-01_StimulusMetadata.csv")  # with its index: fine
  load_brain_rdms(root, rois=("V1",), progress=False)
  s.iloc[::-1].to_csv(root / "betas_csv" / "sub-01_StimulusMetadata.csv")
  with pytest.raises(DataFormatError, match=r"sub-01_StimulusMetadata\.csv: the index column is not"):
    load_brain_rdms(root, rois=("V1",), progress=False)


def test_one_stimulus_under_two_concepts(tiny_release):
  root, subs = tiny_release
  b, v, s = subs["sub-01"]
  s = s.copy()
  s.loc[s.stimulus == "bee_02s.jpg", "stimulus"] = "apple_02s.jpg"  # now shown as an 'apple' and as a 'bee'
  s.to_csv(root / "betas_csv" / "sub-01_StimulusMetadata.csv", index=False)
  with pytest.raises(DataFormatError, match=r"sub-01_StimulusMetadata\.csv.*apple_02s\.jpg.*apple.*bee"):
    load_brain_rdms(root, rois=("V1",), progress=False)


def test_a_voxel_table_without_voxel_id_cannot_be_checked_and_says_so(tiny_release):
  root, subs = tiny_release
  b, v, s = subs["sub-02"]
  v.drop(columns="voxel_id").to_csv(root / "betas_csv" / "sub-02_VoxelMetadata.csv", index=False)
  with pytest.warns(UserWarning, match=r"sub-02_VoxelMetadata\.csv.*voxel_id"):
    load_brain_rdms(root, rois=("V1",), progress=False)


def test_a_response_file_without_its_betas_block_names_the_file(tiny_release):
  import h5py

  root, _ = tiny_release
  with h5py.File(root / "betas_csv" / "sub-02_ResponseData.h5", "a") as f:
    del f["ResponseData"]["block0_values"]
  with pytest.raises(DataFormatError, match=r"sub-02_ResponseData\.h5.*block0_values"):
    load_brain_rdms(root, rois=("V1",), progress=False)
