"""Brain RDMs from the volumetric THINGS-fMRI betas (``betas_vol``), read with nilearn.

Layout, per subject (``betas_vol[/scalematched]`` may be the folder given or inside it):

  sub-XX/ses-*/sub-XX_ses-*_run-*_betas.nii.gz      4-D, one volume per trial
  sub-XX/ses-*/sub-XX_ses-*_run-*_conditions.tsv    one row per volume

The stimulus column of ``_conditions.tsv`` is the first of ``STIMULUS_COLUMNS``
present (the exact column name of the release was not verified here). The volumes
may include catch trials (a third-party script shows 92 volumes per run, vs 82 trials
per run in the table format): rows whose ``trial_type`` is ``catch`` or whose stimulus
name starts with ``catch_`` are dropped after extraction, so z-scoring and selection
see the same trials as the table format.
Without a ``trial_type`` column, stimuli shown more than once are taken to be test
images. Session and run come from the file names (``ses-things03`` -> 3, ``run-07`` -> 7).

ROI masks are NIfTI images on the betas' grid: ``roi_masks`` maps each ROI to one path,
a list of paths (their union, e.g. LOC = lLOC + rLOC), or a dict subject -> path(s).
The betas of the union of the masks are extracted with ``nilearn.maskers.NiftiMasker``
(no standardisation, no detrending), then PROTOCOL §6.5 steps 3-6 run unchanged.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from nilearn.maskers import NiftiMasker
from tqdm.auto import tqdm

from leut.data.errors import DataFormatError, missing_dataset
from leut.data.fmri_files import read_table, subject_name
from leut.data.things_fmri import BrainData, check_stimulus_order, rdms_from_trials, select_stimuli
from leut.data.things_images import concept_of

__all__ = ["STIMULUS_COLUMNS", "find_nifti_runs", "load_nifti_brain_rdms"]

STIMULUS_COLUMNS = ("stimulus", "image_filename", "filename", "file_path", "stim_file", "condition")
_RUN = re.compile(r"(sub-[^_]+)_ses-([^_]+)_run-(\d+)_betas\.nii(\.gz)?$")


def _subject_dir(root: Path, sub: str) -> Path | None:
  for base in (root, root / "betas_vol", root / "betas_vol" / "scalematched", root / "scalematched"):
    if (base / sub).is_dir():
      return base / sub
  return None


def find_nifti_runs(betas_dir: os.PathLike | str, subject: str) -> list[tuple[int, int, Path, Path]]:
  """(session, run, betas path, conditions path) of every run of ``subject``, sorted."""
  root = Path(betas_dir).expanduser()
  sub = subject_name(subject)
  folder = _subject_dir(root, sub)
  if folder is None:
    raise missing_dataset("things_fmri", root, f"no {sub}/ folder of volumetric betas")
  runs = []
  for f in folder.glob("ses-*/*_betas.nii*"):
    m = _RUN.match(f.name)
    if m is None:
      continue
    ses = int(re.sub(r"\D", "", m.group(2)) or 0)
    cond = f.with_name(f.name[: f.name.index("_betas")] + "_conditions.tsv")
    if not cond.is_file():
      raise missing_dataset("things_fmri", cond, f"conditions table of {f.name}")
    runs.append((ses, int(m.group(3)), f, cond))
  if not runs:
    raise missing_dataset("things_fmri", folder, "no ses-*/*_run-*_betas.nii.gz files")
  return sorted(runs)


def _trial_table(runs) -> pd.DataFrame:
  parts = []
  for ses, run, _, cond in runs:
    t = read_table(cond)
    col = next((c for c in STIMULUS_COLUMNS if c in t.columns), None)
    if col is None:
      raise DataFormatError(cond, f"no stimulus column (one of {STIMULUS_COLUMNS}); has {list(t.columns)}")
    names = t[col].astype(str).map(lambda s: Path(s).name)
    parts.append(
      pd.DataFrame(
        {
          "trial_type": t["trial_type"] if "trial_type" in t else None,
          "session": ses,
          "run": run,
          "stimulus": names,
          "concept": t["concept"] if "concept" in t else names.map(lambda s: concept_of(s) or Path(s).stem),
        }
      )
    )
  table = pd.concat(parts, ignore_index=True)
  catch = table["stimulus"].str.match(r"(?i)catch([_\-.\d]|$)") | (table["trial_type"] == "catch")
  if table["trial_type"].isna().all():
    repeated = table["stimulus"].duplicated(keep=False)
    table["trial_type"] = np.where(repeated, "test", "train")
  table.loc[catch, "trial_type"] = "catch"
  return table


def _mask_paths(spec, sub: str, roi: str) -> list[Path]:
  if isinstance(spec, Mapping):
    if sub not in spec:
      raise missing_dataset("things_fmri", f"roi_masks[{roi!r}]", f"no mask for {sub}")
    spec = spec[sub]
  paths = [Path(p) for p in ([spec] if isinstance(spec, (str, os.PathLike)) else spec)]
  for p in paths:
    if not p.is_file():
      raise missing_dataset("things_fmri", p, f"ROI mask of {roi!r} for {sub}")
  return paths


def _subject(betas_dir, sub, roi_masks, rois, *, stimuli, zscore, n_stimuli, reference, ref_sub):
  runs = find_nifti_runs(betas_dir, sub)
  table = _trial_table(runs)
  masks = {r: [np.asarray(nib.load(p).dataobj) > 0 for p in _mask_paths(roi_masks[r], sub, r)] for r in rois}
  first = nib.load(runs[0][2])
  for r, ms in masks.items():
    if any(m.shape != first.shape[:3] for m in ms):
      raise DataFormatError(
        runs[0][2], f"ROI mask {r!r} shape {ms[0].shape} differs from the betas grid {first.shape[:3]}"
      )
  roi_vol = {r: np.logical_or.reduce(ms) for r, ms in masks.items()}
  union = np.logical_or.reduce(list(roi_vol.values()))
  union_img = nib.Nifti1Image(union.astype(np.uint8), first.affine)
  masker = NiftiMasker(mask_img=union_img, standardize=None, detrend=False).fit()
  blocks = []
  for ses, run, path, cond in runs:
    x = masker.transform(str(path)).astype(np.float32)
    n_rows = int(((table["session"] == ses) & (table["run"] == run)).sum())
    if x.shape[0] != n_rows:
      raise DataFormatError(cond, f"{n_rows} rows but {path.name} has {x.shape[0]} volumes")
    if np.isnan(x).any():
      raise DataFormatError(path, "NaN betas in the selected ROI voxels")
    blocks.append(x)
  keep = (table["trial_type"] != "catch").to_numpy()
  x_TxU = np.concatenate(blocks)[keep]
  table = table[keep].reset_index(drop=True)
  # union voxels in the masker's column order; membership of each ROI among them
  masks_RxU = np.stack(
    [
      np.asarray(masker.transform(nib.Nifti1Image(roi_vol[r].astype(np.float32), first.affine))).reshape(-1) > 0.5
      for r in rois
    ]
  )
  order, concepts = select_stimuli(table, stimuli, n_stimuli)
  check_stimulus_order(order, reference, runs[0][3], sub, ref_sub)
  rdms, run_ids = rdms_from_trials(
    x_TxU, table, masks_RxU, order, stimuli=stimuli, zscore=zscore, where=runs[0][3].parent
  )
  return order, concepts, rdms, run_ids


def load_nifti_brain_rdms(
  betas_dir: os.PathLike | str,
  roi_masks: Mapping[str, object],
  *,
  subjects: Sequence[str | int] = ("sub-01", "sub-02", "sub-03"),
  rois: Sequence[str] | None = None,
  stimuli: str = "per_concept",
  zscore: str = "all",
  n_stimuli: int | None = None,
  progress: bool = True,
) -> BrainData:
  """Brain RDMs from volumetric single-trial betas and NIfTI ROI masks (see the module docstring).

  Args:
    betas_dir: folder holding ``sub-XX/ses-*/`` (or ``betas_vol[/scalematched]/sub-XX``).
    roi_masks: ROI -> mask path | list of paths (union) | {subject: path or list}.
    subjects, stimuli, zscore, n_stimuli, progress: as in ``load_brain_rdms``.
    rois: which keys of ``roi_masks`` to use (default: all, in their order).

  Returns:
    BrainData, identical in meaning to the table-format loader's.
  """
  rois = tuple(roi_masks) if rois is None else tuple(rois)
  subs = [subject_name(s) for s in subjects]
  ref, concepts, out, runs = None, None, [], []
  for sub in tqdm(subs, desc="brain RDMs (NIfTI)", unit="subject", disable=not progress, leave=False):
    order, conc, rdms, run = _subject(
      betas_dir,
      sub,
      roi_masks,
      rois,
      stimuli=stimuli,
      zscore=zscore,
      n_stimuli=n_stimuli,
      reference=ref,
      ref_sub=subs[0],
    )
    ref, concepts = (order, conc) if ref is None else (ref, concepts)
    out.append(rdms)
    runs.append(run)
  return BrainData(tuple(ref), tuple(concepts), tuple(subs), rois, np.stack(out, axis=1), np.stack(runs))
