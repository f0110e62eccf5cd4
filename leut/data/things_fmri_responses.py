"""THINGS-fMRI voxel responses as ``ResponseData`` (stimuli x voxels per ROI and subject), for encoding and CKA.

The same steps as the RDMs (PROTOCOL §6.5: union of the ROI voxels, voxels z-scored, stimuli chosen, each
stimulus's rows averaged), stopping before the distance. A voxel's ``reliability`` is its published noise ceiling
in correlation units, sqrt(nc / 100), from ``nc_singletrial`` for single-trial stimuli (``per_concept``) and
``nc_testset`` for the test images averaged over their repetitions (``test``); both columns are kept.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd

from leut.data.errors import DataFormatError
from leut.data.fmri_files import find_subject_files, read_table, table_columns
from leut.data.response_h5 import read_voxel_rows, response_info
from leut.data.responses import ResponseData
from leut.data.things_fmri import (
  DEFAULT_ROIS,
  check_stimulus_order,
  roi_columns,
  select_stimuli,
  stimulus_patterns,
  zscore_voxels,
)
from leut.data.things_images import raw_images_01

__all__ = ["load_things_fmri_responses"]

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
  files = find_subject_files(things_fmri_dir, subjects)
  nc_column = "nc_testset" if stimuli == "test" else "nc_singletrial"
  ref = concepts = None
  blocks, tables = [], []
  for f in files:
    info = response_info(f.responses)
    columns = table_columns(f.voxel_table)
    if nc_column not in columns:
      raise DataFormatError(f.voxel_table, f"no {nc_column!r} column (the voxel noise ceilings)")
    cols_per_roi = [roi_columns(r, columns, f.voxel_table) for r in rois]
    needed = sorted({c for cs in cols_per_roi for c in cs})
    extra = [c for c in ("voxel_id", *_NC) if c in columns]
    vox = read_table(f.voxel_table, extra + needed)
    table = read_table(f.stimulus_table, ("trial_type", "session", "run", "stimulus", "concept"))
    if len(vox) != info.n_voxels or len(table) != info.n_trials:
      raise DataFormatError(f.responses, f"{info.n_voxels} x {info.n_trials} betas do not match the metadata tables")
    order, conc = select_stimuli(table, stimuli, n_stimuli)
    check_stimulus_order(order, ref, f.stimulus_table, f.subject, files[0].subject)
    ref, concepts = (order, conc) if ref is None else (ref, concepts)
    masks_RxV = np.stack([(vox[list(cs)].to_numpy() == 1).any(axis=1) for cs in cols_per_roi])
    union = np.flatnonzero(masks_RxV.any(axis=0))
    x_TxU = read_voxel_rows(f.responses, union)
    groups = None
    if zscore == "run":
      groups = table["session"].to_numpy(np.int64) * 1000 + table["run"].to_numpy(np.int64)
    pat_SxU = stimulus_patterns(zscore_voxels(x_TxU, groups), table["stimulus"].to_numpy(), order, f.stimulus_table)
    for roi, m in zip(rois, masks_RxV[:, union]):
      rows = union[m]
      nc = vox[nc_column].to_numpy(np.float64)[rows]
      t = pd.DataFrame(
        {
          "roi": roi,
          "subject": f.subject,
          "neuroid_id": (vox["voxel_id"].to_numpy()[rows] if "voxel_id" in vox else rows).astype(str),
          "reliability": np.sqrt(np.clip(nc, 0, None) / 100.0),
        }
      )
      for c in _NC:
        if c in vox:
          t[c] = vox[c].to_numpy()[rows]
      tables.append(t)
      blocks.append(pat_SxU[:, m])
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
    stimuli=tuple(ref),
    concepts=tuple(concepts),
    responses_SxN=np.concatenate(blocks, axis=1)[:, order_N].astype(np.float32),
    neuroids=table.iloc[order_N].reset_index(drop=True),
    split_S=None,
    load_images_01=loader,
  )
