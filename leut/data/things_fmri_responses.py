"""THINGS-fMRI voxel responses as ``ResponseData`` (stimuli x voxels per ROI and subject), for encoding and CKA.

The same steps as the RDMs (PROTOCOL §6.5: union of the ROI voxels, voxels z-scored, stimuli chosen, each
stimulus's rows averaged), stopping before the distance: both come from ``things_fmri.subject_patterns``, so
`load_things_fmri_rdms_and_responses` gives an evaluation that scores RSA and CKA/encoding both from one read of
each subject's betas. A voxel's ``reliability`` is its published noise ceiling in correlation units, sqrt(nc / 100),
from ``nc_singletrial`` for single-trial stimuli (``per_concept``) and ``nc_testset`` for the test images averaged
over their repetitions (``test``); both columns are kept.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from leut.data.errors import DataFormatError
from leut.data.fmri_files import SubjectFiles, find_subject_files, table_columns
from leut.data.responses import ResponseData
from leut.data.things_fmri import (
  DEFAULT_ROIS,
  BrainData,
  SubjectLayout,
  rdms_from_patterns,
  stimulus_runs,
  subject_patterns,
)
from leut.data.things_images import raw_images_01

__all__ = ["load_things_fmri_responses", "load_things_fmri_rdms_and_responses"]

_NC = ("nc_singletrial", "nc_testset")


def load_things_fmri_responses(
  things_fmri_dir: os.PathLike | str,
  things_images_dir: os.PathLike | str | None = None,
  *,
  subjects: Sequence[str | int] | None = None,
  rois: Sequence[str] = DEFAULT_ROIS,
  stimuli: str = "per_concept",
  zscore: str = "all",
  n_stimuli: int | None = None,
) -> ResponseData:
  """Per-stimulus voxel patterns of every ROI and subject (arguments as ``things_fmri.load_brain_rdms``).

  A voxel in two ROIs (e.g. lLOC and IT) appears once per ROI. Raises as ``load_brain_rdms`` does, and
  DataFormatError when the voxel table has no noise-ceiling columns.
  """
  options = dict(subjects=subjects, rois=rois, stimuli=stimuli, zscore=zscore, n_stimuli=n_stimuli)
  return _load(things_fmri_dir, things_images_dir, rdms=False, progress=False, **options)[1]


def load_things_fmri_rdms_and_responses(
  things_fmri_dir: os.PathLike | str,
  things_images_dir: os.PathLike | str | None = None,
  *,
  subjects: Sequence[str | int] | None = None,
  rois: Sequence[str] = DEFAULT_ROIS,
  stimuli: str = "per_concept",
  zscore: str = "all",
  n_stimuli: int | None = None,
  progress: bool = True,
) -> tuple[BrainData, ResponseData]:
  """``(load_brain_rdms(...), load_things_fmri_responses(...))`` of the same arguments, reading each subject's
  betas once: the RDMs (bit-identical, with the same per-stimulus runs) and the responses of one evaluation that
  scores RSA and CKA or encoding. Raises as the two loaders do."""
  options = dict(subjects=subjects, rois=rois, stimuli=stimuli, zscore=zscore, n_stimuli=n_stimuli)
  return _load(things_fmri_dir, things_images_dir, rdms=True, progress=progress, **options)


def _load(things_fmri_dir, things_images_dir, *, subjects, rois, stimuli, zscore, n_stimuli, rdms: bool, progress):
  """(BrainData or None when not ``rdms``, ResponseData), each subject's betas read once."""
  files = find_subject_files(things_fmri_dir, subjects)
  nc_column = "nc_testset" if stimuli == "test" else "nc_singletrial"
  for f in files:  # before any betas are read
    if nc_column not in table_columns(f.voxel_table):
      raise DataFormatError(f.voxel_table, f"no {nc_column!r} column (the voxel noise ceilings)")
  ref = concepts = None
  rdms_RxS, runs_S, blocks, tables = [], [], [], []
  for f in tqdm(files, desc="brain responses", unit="subject", disable=not progress, leave=False):
    lay, pat_SxU = subject_patterns(
      f,
      rois,
      zscore=zscore,
      stimuli=stimuli,
      n_stimuli=n_stimuli,
      reference=ref,
      reference_subject=files[0].subject,
      voxel_columns=_NC,
    )
    ref, concepts = (lay.order, lay.concepts) if ref is None else (ref, concepts)
    masks_RxU = lay.masks_RxV[:, lay.union]
    if rdms:
      rdms_RxS.append(rdms_from_patterns(pat_SxU, masks_RxU))
      runs_S.append(stimulus_runs(lay.table, lay.order, stimuli))
    for roi, m in zip(rois, masks_RxU):
      tables.append(_neuroids(lay, f, roi, lay.union[m], nc_column))
      blocks.append(pat_SxU[:, m])
  brain = None
  if rdms:
    subject_names = tuple(f.subject for f in files)
    brain = BrainData(
      tuple(ref), tuple(concepts), subject_names, tuple(rois), np.stack(rdms_RxS, axis=1), np.stack(runs_S)
    )
  return brain, _responses(ref, concepts, rois, tables, blocks, things_images_dir)


def _neuroids(lay: SubjectLayout, files: SubjectFiles, roi: str, rows: np.ndarray, nc_column: str) -> pd.DataFrame:
  """The neuroid rows of one ROI of one subject: its voxel ids, noise ceilings and reliability."""
  vox = lay.voxels
  nc = vox[nc_column].to_numpy(np.float64)[rows]
  t = pd.DataFrame(
    {
      "roi": roi,
      "subject": files.subject,
      "neuroid_id": (vox["voxel_id"].to_numpy()[rows] if "voxel_id" in vox else rows).astype(str),
      "reliability": np.sqrt(np.clip(nc, 0, None) / 100.0),
    }
  )
  for c in _NC:
    if c in vox:
      t[c] = vox[c].to_numpy()[rows]
  return t


def _responses(stimuli, concepts, rois, tables, blocks, things_images_dir) -> ResponseData:
  """The ResponseData of the per-(subject, ROI) blocks, neuroids ordered by ROI, then subject."""
  loader = None
  if things_images_dir is not None:
    images_dir = things_images_dir

    def loader(stim, px, upsampled=False):
      return raw_images_01(images_dir, stim, px=px, upsampled=upsampled)

  table = pd.concat(tables, ignore_index=True)
  subject_order = list(dict.fromkeys(table["subject"]))
  order_N = np.lexsort((table["subject"].map(subject_order.index), table["roi"].map(list(rois).index)))
  return ResponseData(
    dataset="things_fmri",
    stimuli=tuple(stimuli),
    concepts=tuple(concepts),
    responses_SxN=np.concatenate(blocks, axis=1)[:, order_N].astype(np.float32),
    neuroids=table.iloc[order_N].reset_index(drop=True),
    split_S=None,
    load_images_01=loader,
  )
