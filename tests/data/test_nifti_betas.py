"""Volumetric (NIfTI) betas through nilearn give the same RDMs as the table format."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from fmri_release import tiny_subject, write_subject

from leut.data import DataFormatError, load_brain_rdms
from leut.data.nifti_betas import load_nifti_brain_rdms

GRID = (6, 6, 5)
AFFINE = np.diag([2.0, 2.0, 2.0, 1.0])


def _write_nifti_subject(root, sub, betas_VxT, vox, stim):
  rng = np.random.default_rng(0)
  for (ses, run), rows in stim.groupby(["session", "run"]).groups.items():
    folder = root / sub / f"ses-things{ses:02d}"
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{sub}_ses-things{ses:02d}_run-{run:02d}"
    # two catch trials per run, as in the volumetric release; the loader must drop them
    vol = np.concatenate([betas_VxT[:, rows], rng.normal(50, 9, (betas_VxT.shape[0], 2))], axis=1)
    nib.save(
      nib.Nifti1Image(vol.reshape(*GRID, len(rows) + 2).astype(np.float32), AFFINE), folder / f"{stem}_betas.nii.gz"
    )
    cond = stim.loc[rows, ["stimulus"]].rename(columns={"stimulus": "image_filename"})
    cond = pd.concat([cond, pd.DataFrame({"image_filename": ["catch_01.jpg", "catch_02.jpg"]})])
    cond.to_csv(folder / f"{stem}_conditions.tsv", sep="\t", index=False)
  masks = {}
  for col in ("V1", "hV4", "lLOC", "rLOC", "IT"):
    path = root / "masks" / f"{sub}_{col}.nii.gz"
    path.parent.mkdir(exist_ok=True)
    nib.save(nib.Nifti1Image(vox[col].to_numpy().reshape(GRID).astype(np.uint8), AFFINE), path)
    masks[col] = path
  return masks


@pytest.fixture
def both_formats(tmp_path):
  masks = {"V1": {}, "V4": {}, "LOC": {}, "IT": {}}
  for sub, seed in (("sub-01", 1), ("sub-02", 2)):
    b, v, s = tiny_subject(seed, n_voxels=int(np.prod(GRID)))
    write_subject(tmp_path / "table", sub, b, v, s)
    m = _write_nifti_subject(tmp_path / "vol", sub, b, v, s)
    masks["V1"][sub], masks["V4"][sub], masks["IT"][sub] = m["V1"], m["hV4"], m["IT"]
    masks["LOC"][sub] = [m["lLOC"], m["rLOC"]]
  return tmp_path, masks


@pytest.mark.parametrize("zscore,stimuli", [("all", "per_concept"), ("run", "per_concept"), ("all", "test")])
def test_nifti_equals_table_format(both_formats, zscore, stimuli):
  root, masks = both_formats
  vol = load_nifti_brain_rdms(root / "vol", masks, subjects=(1, 2), zscore=zscore, stimuli=stimuli, progress=False)
  tab = load_brain_rdms(root / "table", rois=("V1", "V4", "LOC", "IT"), zscore=zscore, stimuli=stimuli, progress=False)
  assert vol.stimuli == tab.stimuli and vol.rois == tab.rois and vol.subjects == tab.subjects
  np.testing.assert_allclose(vol.rdms_RxJxSxS, tab.rdms_RxJxSxS, atol=1e-5)
  np.testing.assert_array_equal(vol.runs_JxS, tab.runs_JxS)


def test_mask_on_another_grid_is_an_error(both_formats, tmp_path):
  root, masks = both_formats
  bad = tmp_path / "bad.nii.gz"
  nib.save(nib.Nifti1Image(np.ones((3, 3, 3), np.uint8), AFFINE), bad)
  with pytest.raises(DataFormatError, match=r"_betas\.nii\.gz.*mask 'V1' shape \(3, 3, 3\)"):
    load_nifti_brain_rdms(root / "vol", {"V1": bad}, subjects=(1,), progress=False)
