"""THINGS-fMRI brain RDMs per ROI and subject, following PROTOCOL §6.5 exactly.

Per subject: read the voxel and stimulus tables; read only the rows of the union of
the requested ROIs from the response HDF5; z-score every voxel over all trials
(population SD, +1e-8) or within each session x run; choose the stimuli (for each
concept, sorted, its alphabetically first stimulus; or the test images averaged over
their repetitions); average each stimulus's rows; per ROI take the correlation
distance (1 - Pearson r) between stimulus patterns. The reference subject's (sub-01's)
stimulus order is used for everyone, and a subject whose own order differs is an error.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from leut.data.errors import DataFormatError, UnknownRoiError, UnverifiedOrderWarning
from leut.data.fmri_files import SubjectFiles, find_subject_files, read_table, table_columns
from leut.data.response_h5 import read_voxel_rows, response_info
from leut.data.simulated_brain import correlation_rdm

__all__ = [
  "BrainData",
  "ROI_ALIASES",
  "DEFAULT_ROIS",
  "roi_columns",
  "select_stimuli",
  "zscore_voxels",
  "stimulus_patterns",
  "check_stimulus_order",
  "trial_patterns",
  "rdms_from_patterns",
  "stimulus_runs",
  "rdms_from_trials",
  "load_brain_rdms",
  "check_release",
  "subject_layout",
  "subject_patterns",
  "subject_rdms",
]

ROI_ALIASES = {"V4": ("hV4",), "LOC": ("lLOC", "rLOC")}
DEFAULT_ROIS = ("V1", "V2", "V3", "V4", "LOC", "IT")
_STIM_COLUMNS = ("trial_type", "session", "run", "stimulus", "concept")
_NOT_ROI = {
  "voxel_id",
  "subject_id",
  "voxel_x",
  "voxel_y",
  "voxel_z",
  "nc_singletrial",
  "nc_testset",
  "splithalf_uncorrected",
  "splithalf_corrected",
  "prf-eccentricity",
  "prf-polarangle",
  "prf-rsquared",
  "prf-size",
}


@dataclasses.dataclass(frozen=True, eq=False)
class BrainData:
  """Brain RDMs of R ROIs x J subjects over S stimuli (all subjects in one stimulus order).

  ``runs_JxS`` is a per-subject run id (session*1000 + run) of each stimulus, for
  cross-run pair masks (PROTOCOL §3.4). Where a stimulus has no single run (test
  images averaged over runs, precomputed RDMs) it holds ``-(1 + s)``, distinct for
  every stimulus, so no pair is masked.
  """

  stimuli: tuple[str, ...]
  concepts: tuple[str, ...]
  subjects: tuple[str, ...]
  rois: tuple[str, ...]
  rdms_RxJxSxS: np.ndarray
  runs_JxS: np.ndarray

  def __post_init__(self):
    r, j, s = len(self.rois), len(self.subjects), len(self.stimuli)
    if self.rdms_RxJxSxS.shape != (r, j, s, s):
      raise ValueError(f"rdms_RxJxSxS has shape {self.rdms_RxJxSxS.shape}, expected {(r, j, s, s)}")
    if self.runs_JxS.shape != (j, s) or len(self.concepts) != s:
      raise ValueError(
        f"runs_JxS {self.runs_JxS.shape} / concepts {len(self.concepts)} do not match {j} subjects x {s} stimuli"
      )

  def rdm(self, roi: str, subject: str) -> np.ndarray:
    """The (S, S) RDM of one ROI and subject."""
    return self.rdms_RxJxSxS[self.rois.index(roi), self.subjects.index(subject)]


def roi_columns(roi: str, columns: Sequence[str], where) -> tuple[str, ...]:
  """Voxel-table columns whose OR defines ``roi`` (aliases V4 -> hV4, LOC -> lLOC|rLOC).

  Raises:
    UnknownRoiError: naming ``where`` and the available ROI columns.
  """
  if roi in columns:
    return (roi,)
  alias = ROI_ALIASES.get(roi)
  if alias and all(c in columns for c in alias):
    return alias
  available = [c for c in columns if c not in _NOT_ROI]
  raise UnknownRoiError(
    where,
    f"unknown ROI {roi!r}: not an alias ({ROI_ALIASES}) and not a "
    f"column of the voxel table; available ROI columns: {available}",
  )


def select_stimuli(
  stim_table: pd.DataFrame, mode: str = "per_concept", n_stimuli: int | None = None
) -> tuple[list[str], list[str]]:
  """Stimulus order (PROTOCOL §6.5 step 4): returns (stimuli, concepts).

  ``"per_concept"``: over the table deduplicated by stimulus, for each concept in
  sorted order its alphabetically first stimulus. ``"test"``: the sorted unique
  ``trial_type == 'test'`` stimuli. Truncated to ``n_stimuli`` if given.
  """
  if mode == "per_concept":
    uniq = stim_table.drop_duplicates("stimulus")
    first = uniq.groupby("concept", sort=True)["stimulus"].min()
    stimuli, concepts = list(first.to_numpy()), list(first.index)
  elif mode == "test":
    test = stim_table[stim_table["trial_type"] == "test"].drop_duplicates("stimulus")
    test = test.sort_values("stimulus")
    stimuli, concepts = list(test["stimulus"]), list(test["concept"])
  else:
    raise ValueError(f"stimuli must be 'per_concept' or 'test', got {mode!r}")
  if n_stimuli is not None:
    stimuli, concepts = stimuli[:n_stimuli], concepts[:n_stimuli]
  return [str(s) for s in stimuli], [str(c) for c in concepts]


def zscore_voxels(x_TxV: np.ndarray, groups_T: np.ndarray | None = None, *, chunk: int = 1024) -> np.ndarray:
  """z-scores each voxel (column) in place: (x - mean) / (population SD + 1e-8).

  Statistics are computed in float64, over all trials or within each group of
  ``groups_T`` (e.g. session*1000 + run); the result is float32.
  """
  x_TxV = np.asarray(x_TxV, np.float32)
  rows = [slice(None)] if groups_T is None else [np.flatnonzero(groups_T == g) for g in np.unique(groups_T)]
  for lo in range(0, x_TxV.shape[1], chunk):
    for r in rows:
      x = x_TxV[r, lo : lo + chunk].astype(np.float64)
      mu = x.mean(axis=0)
      sd = np.sqrt(((x - mu) ** 2).mean(axis=0))
      x_TxV[r, lo : lo + chunk] = (x - mu) / (sd + 1e-8)
  return x_TxV


def stimulus_patterns(
  z_TxV: np.ndarray, stimulus_T: Sequence[str], stimuli: Sequence[str], where="stimulus table"
) -> np.ndarray:
  """Mean row per stimulus (S, V) float64, in the order of ``stimuli``."""
  pos = {s: i for i, s in enumerate(stimuli)}
  code_T = np.array([pos.get(s, -1) for s in stimulus_T])
  missing = sorted(set(stimuli) - set(np.asarray(stimulus_T)[code_T >= 0]))
  if missing:
    raise DataFormatError(where, f"{len(missing)} stimuli of the reference order never shown, e.g. {missing[:3]}")
  sel = np.flatnonzero(code_T >= 0)
  sel = sel[np.argsort(code_T[sel], kind="stable")]
  starts = np.flatnonzero(np.r_[True, np.diff(code_T[sel]) != 0])
  counts = np.diff(np.r_[starts, sel.size])
  sums = np.add.reduceat(z_TxV[sel].astype(np.float64), starts, axis=0)
  return sums / counts[:, None]


def stimulus_runs(table: pd.DataFrame, order: Sequence[str], stimuli: str = "per_concept") -> np.ndarray:
  """Run id (session*1000 + run) of each stimulus of ``order`` for the cross-run pair masks (PROTOCOL §3.4).

  A stimulus shown in more than one run, and every stimulus with ``stimuli="test"`` (averaged over its
  repetitions), gets ``-(1 + s)``: distinct for every stimulus, so none of its pairs is masked.
  """
  if stimuli != "per_concept":
    return -(1 + np.arange(len(order)))
  run_T = table["session"].to_numpy(np.int64) * 1000 + table["run"].to_numpy(np.int64)
  out = np.empty(len(order), np.int64)
  groups = pd.Series(run_T).groupby(table["stimulus"].to_numpy()).unique()
  for s, name in enumerate(order):
    runs = groups[name]
    out[s] = runs[0] if len(runs) == 1 else -(1 + s)
  return out


class SubjectLayout(NamedTuple):
  """What one subject's files say before any beta is read (`subject_layout`)."""

  table: pd.DataFrame  # the stimulus table, one row per trial (h5 column order)
  masks_RxV: np.ndarray  # which voxel rows belong to each ROI
  union: np.ndarray  # voxel rows of any requested ROI, ascending
  order: list[str]  # the selected stimuli, in RDM order
  concepts: list[str]
  voxels: pd.DataFrame  # the voxel table's columns read (voxel_id if present, the ROI columns, voxel_columns)


def subject_layout(
  files: SubjectFiles,
  rois: Sequence[str],
  *,
  stimuli: str = "per_concept",
  n_stimuli: int | None = None,
  reference: Sequence[str] | None = None,
  reference_subject: str = "sub-01",
  voxel_columns: Sequence[str] = (),
) -> SubjectLayout:
  """Check one subject's three files against each other and select its stimuli, reading no betas.

  Reads the HDF5 header, the voxel table's ROI columns (and those of ``voxel_columns`` it has, e.g. the noise
  ceilings) and the stimulus table. Raises DataFormatError (naming the
  file) for row counts that disagree, voxel ids that differ, an ROI without voxels, a stimulus listed under two
  concepts, or a stimulus order that differs from ``reference``; warns (`UnverifiedOrderWarning`) when the voxel
  rows cannot be checked against the response file (no ``voxel_id`` in one of them).
  """
  info = response_info(files.responses)
  columns = table_columns(files.voxel_table)
  cols_per_roi = [roi_columns(r, columns, files.voxel_table) for r in rois]
  needed = sorted({c for cs in cols_per_roi for c in cs})
  extra = [c for c in ("voxel_id", *voxel_columns) if c in columns and c not in needed]
  vox = read_table(files.voxel_table, list(dict.fromkeys(extra)) + needed)
  if len(vox) != info.n_voxels:
    raise DataFormatError(
      files.voxel_table, f"voxel table has {len(vox)} rows but {files.responses.name} has {info.n_voxels} voxel rows"
    )
  stim_columns = table_columns(files.stimulus_table)
  # A table saved with its pandas index has an unnamed first column; it must be 0..n-1.
  index_col = stim_columns[0] if stim_columns and stim_columns[0].startswith("Unnamed") else None
  table = read_table(files.stimulus_table, _STIM_COLUMNS + ((index_col,) if index_col else ()))
  if len(table) != info.n_trials:
    raise DataFormatError(
      files.stimulus_table,
      f"stimulus table has {len(table)} rows but {files.responses.name} has {info.n_trials} trial columns",
    )
  if index_col and not np.array_equal(table[index_col].to_numpy(), np.arange(len(table))):
    raise DataFormatError(files.stimulus_table, "the index column is not 0..n-1 (rows reordered?)")
  concepts_of = table.groupby("stimulus", sort=True)["concept"].unique()
  shared = concepts_of[concepts_of.map(len) > 1]
  if len(shared):
    raise DataFormatError(
      files.stimulus_table,
      f"stimulus {shared.index[0]!r} is listed under {len(shared.iloc[0])} concepts "
      f"{sorted(map(str, shared.iloc[0]))} ({len(shared)} such stimuli); each stimulus belongs to one concept",
    )
  masks_RxV = np.stack([(vox[list(cs)].to_numpy() == 1).any(axis=1) for cs in cols_per_roi])
  for r, m in zip(rois, masks_RxV):
    if not m.any():
      raise DataFormatError(files.voxel_table, f"ROI {r!r} has no voxels")
  union = np.flatnonzero(masks_RxV.any(axis=0))
  if info.voxel_ids is not None and "voxel_id" in vox:
    bad = np.flatnonzero(vox["voxel_id"].to_numpy()[union] != info.voxel_ids[union])
    if bad.size:
      raise DataFormatError(
        files.voxel_table,
        f"voxel_id of row {union[bad[0]]} differs from {files.responses.name} ({bad.size} selected rows disagree)",
      )
  else:
    lacking = files.voxel_table.name if "voxel_id" not in vox else f"{files.responses.name} (no voxel id block)"
    warnings.warn(
      f"{files.voxel_table}: its rows cannot be checked against {files.responses.name} because {lacking} has no "
      "voxel_id; they are taken to be in the same order",
      UnverifiedOrderWarning,
      stacklevel=2,
    )
  order, concepts = select_stimuli(table, stimuli, n_stimuli)
  check_stimulus_order(order, reference, files.stimulus_table, files.subject, reference_subject)
  return SubjectLayout(table, masks_RxV, union, order, concepts, vox)


def subject_patterns(
  files: SubjectFiles,
  rois: Sequence[str],
  *,
  zscore: str = "all",
  stimuli: str = "per_concept",
  n_stimuli: int | None = None,
  reference: Sequence[str] | None = None,
  reference_subject: str = "sub-01",
  voxel_columns: Sequence[str] = (),
  progress=None,
) -> tuple[SubjectLayout, np.ndarray]:
  """One subject's layout (`subject_layout`) and stimulus patterns (float64 S x U over ``layout.union``).

  The only place a subject's betas are read (PROTOCOL §6.5 steps 1-5): the RDMs (`subject_rdms`) and the responses
  of CKA and encoding (`leut.data.things_fmri_responses`) are both made from its patterns. Raises DataFormatError
  for NaN betas among the selected voxels, and as `subject_layout` does.
  """
  lay = subject_layout(
    files,
    rois,
    stimuli=stimuli,
    n_stimuli=n_stimuli,
    reference=reference,
    reference_subject=reference_subject,
    voxel_columns=voxel_columns,
  )
  x_TxU = read_voxel_rows(files.responses, lay.union, progress=progress)
  nan_cols = np.flatnonzero(np.isnan(x_TxU).any(axis=0))
  if nan_cols.size:
    raise DataFormatError(
      files.responses,
      f"NaN betas in {nan_cols.size} of the {lay.union.size} selected ROI voxels "
      f"(first at voxel row {lay.union[nan_cols[0]]})",
    )
  return lay, trial_patterns(x_TxU, lay.table, lay.order, zscore=zscore, where=files.stimulus_table)


def subject_rdms(
  files: SubjectFiles,
  rois: Sequence[str],
  *,
  zscore: str = "all",
  stimuli: str = "per_concept",
  n_stimuli: int | None = None,
  reference: Sequence[str] | None = None,
  reference_subject: str = "sub-01",
  progress=None,
) -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
  """RDMs of one subject: returns (stimuli, concepts, rdms_RxSxS float32, runs_S).

  With ``reference`` (the reference subject's stimulus order) the subject's own
  order must equal it, else DataFormatError ("mismatched stimulus orders").
  """
  lay, pat_SxU = subject_patterns(
    files,
    rois,
    zscore=zscore,
    stimuli=stimuli,
    n_stimuli=n_stimuli,
    reference=reference,
    reference_subject=reference_subject,
    progress=progress,
  )
  rdms = rdms_from_patterns(pat_SxU, lay.masks_RxV[:, lay.union])
  return lay.order, lay.concepts, rdms, stimulus_runs(lay.table, lay.order, stimuli)


def check_release(
  things_fmri_dir: os.PathLike | str,
  *,
  subjects: Sequence[str | int] | None = None,
  rois: Sequence[str] = DEFAULT_ROIS,
  stimuli: str = "per_concept",
  n_stimuli: int | None = None,
) -> list[str]:
  """Check a release as `load_brain_rdms` would read it, without reading betas; returns the stimulus order.

  Seconds instead of minutes at full size, so a wrong path or a malformed table stops a run before training.
  """
  files = find_subject_files(things_fmri_dir, subjects)
  ref = None
  for f in files:
    lay = subject_layout(
      f, rois, stimuli=stimuli, n_stimuli=n_stimuli, reference=ref, reference_subject=files[0].subject
    )
    ref = lay.order if ref is None else ref
  return list(ref)


def check_stimulus_order(
  order: Sequence[str], reference: Sequence[str] | None, where, subject: str, reference_subject: str
) -> None:
  """Raises DataFormatError ("mismatched stimulus orders") unless ``order`` equals ``reference``."""
  if reference is None or list(reference) == list(order):
    return
  i = next((k for k, (a, b) in enumerate(zip(reference, order)) if a != b), min(len(reference), len(order)))
  ra = reference[i] if i < len(reference) else "<end>"
  oa = order[i] if i < len(order) else "<end>"
  raise DataFormatError(
    where,
    f"mismatched stimulus orders: {subject}'s stimulus order differs "
    f"from {reference_subject}'s at position {i} ({oa!r} vs {ra!r})",
  )


def trial_patterns(
  x_TxU: np.ndarray, table: pd.DataFrame, order: Sequence[str], *, zscore: str = "all", where="stimulus table"
) -> np.ndarray:
  """Steps 3 and 5 of PROTOCOL §6.5: each voxel z-scored (``zscore`` "all" trials or within each session x "run"),
  then each stimulus's rows of ``order`` averaged; returns float64 (S, U)."""
  groups = None
  if zscore == "run":
    groups = table["session"].to_numpy(np.int64) * 1000 + table["run"].to_numpy(np.int64)
  elif zscore != "all":
    raise ValueError(f"zscore must be 'all' or 'run', got {zscore!r}")
  return stimulus_patterns(zscore_voxels(x_TxU, groups), table["stimulus"].to_numpy(), order, where)


def rdms_from_patterns(pat_SxU: np.ndarray, masks_RxU: np.ndarray) -> np.ndarray:
  """Step 6 of PROTOCOL §6.5: per ROI, the correlation distance (1 - Pearson r) between the stimulus patterns of
  its voxels (``masks_RxU``); returns float32 (R, S, S)."""
  return np.stack([correlation_rdm(pat_SxU[:, m]) for m in masks_RxU]).astype(np.float32)


def rdms_from_trials(
  x_TxU: np.ndarray,
  table: pd.DataFrame,
  masks_RxU: np.ndarray,
  order: Sequence[str],
  *,
  stimuli: str = "per_concept",
  zscore: str = "all",
  where="stimulus table",
) -> tuple[np.ndarray, np.ndarray]:
  """Steps 3, 5 and 6 of PROTOCOL §6.5 on trial x voxel betas: (rdms_RxSxS float32, runs_S).

  Args:
    x_TxU: betas of the union of ROI voxels, one row per row of ``table``.
    table: trials with ``session``, ``run`` and ``stimulus`` columns.
    masks_RxU: which union columns belong to each ROI.
    order: the stimuli, in RDM order.
  """
  pat_SxU = trial_patterns(x_TxU, table, order, zscore=zscore, where=where)
  return rdms_from_patterns(pat_SxU, masks_RxU), stimulus_runs(table, order, stimuli)


def load_brain_rdms(
  things_fmri_dir: os.PathLike | str,
  *,
  subjects: Sequence[str | int] | None = None,
  rois: Sequence[str] = DEFAULT_ROIS,
  stimuli: str = "per_concept",
  zscore: str = "all",
  n_stimuli: int | None = None,
  progress: bool = True,
) -> BrainData:
  """Builds per-ROI, per-subject correlation-distance RDMs from single-trial betas.

  Args:
    things_fmri_dir: release folder (``data.things_fmri_dir``); Figshare ``betas_csv``
      or OpenNeuro ds004192 naming.
    subjects: e.g. ``("sub-01", "sub-02")`` or ``(1, 2)``; default all found. The first
      is the reference whose stimulus order everyone must share (sub-01 by default).
    rois: ROI names: ``V4`` means ``hV4``, ``LOC`` means ``lLOC`` OR ``rLOC``; any
      other voxel-table column by name.
    stimuli: ``"per_concept"`` (one image per concept, the 720 set) or ``"test"``
      (the test images averaged over repetitions).
    zscore: ``"all"`` (over all trials, the published default) or ``"run"``.
    n_stimuli: truncate the stimulus order (720 for the real data).
    progress: show a tqdm bar over subjects.

  Returns:
    BrainData with float32 ``rdms_RxJxSxS``.

  Raises:
    MissingDatasetError: missing folder or files. DataFormatError: inconsistent files,
      NaN betas, unknown ROI, mismatched stimulus orders (each naming the file).

  Example:
    >>> brain = load_brain_rdms(cfg.data.things_fmri_dir, n_stimuli=720)  # doctest: +SKIP
    >>> brain.rdms_RxJxSxS.shape
    (6, 3, 720, 720)
  """
  files = find_subject_files(things_fmri_dir, subjects)
  ref, concepts, out, runs = None, None, [], []
  for f in tqdm(files, desc="brain RDMs", unit="subject", disable=not progress, leave=False):
    order, conc, rdms, run = subject_rdms(
      f, rois, zscore=zscore, stimuli=stimuli, n_stimuli=n_stimuli, reference=ref, reference_subject=files[0].subject
    )
    ref, concepts = (order, conc) if ref is None else (ref, concepts)
    out.append(rdms)
    runs.append(run)
  return BrainData(
    tuple(ref), tuple(concepts), tuple(f.subject for f in files), tuple(rois), np.stack(out, axis=1), np.stack(runs)
  )
