"""Finding and reading the per-subject THINGS-fMRI files (Figshare or OpenNeuro naming).

Two namings are recognised, in these folders of ``things_fmri_dir``:

* Figshare table format: ``[betas_csv/]sub-XX_{ResponseData.h5, VoxelMetadata.csv,
  StimulusMetadata.csv}``;
* OpenNeuro ds004192 (and the author's renamed copy): ``sub-XX_task-things_{voxel-wise-
  responses.h5, voxel-metadata.tsv|csv, stimulus-metadata.tsv|csv}`` directly in the
  folder, or under ``[derivatives/ICA-betas/]sub-XX/[voxel-metadata/]``.

Tables may be comma- or tab-separated; the separator is detected from the header.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from leut.data.errors import DataFormatError, missing_dataset

__all__ = ["SubjectFiles", "find_subject_files", "read_table", "table_columns", "subject_name"]

_FIGSHARE = ("{s}_ResponseData.h5", "{s}_VoxelMetadata.csv", "{s}_StimulusMetadata.csv")
_OPENNEURO = (
  "{s}_task-things_voxel-wise-responses.h5",
  "{s}_task-things_voxel-metadata",
  "{s}_task-things_stimulus-metadata",
)


class SubjectFiles(NamedTuple):
  """The three files of one subject."""

  subject: str  # "sub-01"
  responses: Path  # HDF5, voxels x trials
  voxel_table: Path  # one row per voxel (h5 row order)
  stimulus_table: Path  # one row per trial (h5 column order)


def subject_name(s: str | int) -> str:
  """Normalises ``1``, ``"1"``, ``"01"`` or ``"sub-01"`` to ``"sub-01"``."""
  s = str(s)
  if s.startswith("sub-"):
    return s
  return f"sub-{int(s):02d}"


def _folders(root: Path, sub: str) -> list[Path]:
  return [
    root,
    root / "betas_csv",
    root / "derivatives" / "ICA-betas" / sub / "voxel-metadata",
    root / "derivatives" / "ICA-betas" / sub,
    root / sub / "voxel-metadata",
    root / sub,
  ]


def _with_suffix(folder: Path, stem: str) -> Path | None:
  for ext in (".tsv", ".csv"):
    if (folder / (stem + ext)).is_file():
      return folder / (stem + ext)
  return None


def _files_for(root: Path, sub: str) -> SubjectFiles | None:
  for folder in _folders(root, sub):
    h5, vox, stim = (p.format(s=sub) for p in _FIGSHARE)
    if (folder / h5).is_file():
      return SubjectFiles(sub, folder / h5, folder / vox, folder / stim)
    h5, vox, stim = (p.format(s=sub) for p in _OPENNEURO)
    if (folder / h5).is_file():
      return SubjectFiles(
        sub,
        folder / h5,
        _with_suffix(folder, vox) or folder / (vox + ".tsv"),
        _with_suffix(folder, stim) or folder / (stim + ".tsv"),
      )
  return None


def _discover(root: Path) -> list[str]:
  subs = set()
  pats = [r"(sub-\d+)_ResponseData\.h5$", r"(sub-\d+)_task-things_voxel-wise-responses\.h5$"]
  cands = [root, root / "betas_csv"] + [
    p / q
    for base in (root, root / "derivatives" / "ICA-betas")
    if base.is_dir()
    for p in base.glob("sub-*")
    for q in ("", "voxel-metadata")
  ]
  for folder in cands:
    if folder.is_dir():
      for f in folder.iterdir():
        for pat in pats:
          m = re.match(pat, f.name)
          if m:
            subs.add(m.group(1))
  return sorted(subs)


def find_subject_files(
  things_fmri_dir: os.PathLike | str, subjects: Sequence[str | int] | None = None
) -> list[SubjectFiles]:
  """Locates each subject's response, voxel and stimulus files.

  Raises:
    MissingDatasetError: the folder, a subject, or one of its files is missing.
  """
  root = Path(things_fmri_dir).expanduser()
  if not root.is_dir():
    raise missing_dataset("things_fmri", root)
  subs = [subject_name(s) for s in subjects] if subjects is not None else _discover(root)
  if not subs:
    raise missing_dataset(
      "things_fmri", root, "no sub-XX_ResponseData.h5 or sub-XX_task-things_voxel-wise-responses.h5 found"
    )
  out = []
  for sub in subs:
    files = _files_for(root, sub)
    if files is None:
      raise missing_dataset("things_fmri", root, f"no response file for {sub}")
    for p in files[2:]:
      if not p.is_file():
        raise missing_dataset("things_fmri", p, f"{sub}'s table {p.name} is missing")
    out.append(files)
  return out


def _sep(path: Path) -> str:
  if path.suffix == ".tsv":
    return "\t"
  with open(path, newline="") as f:
    head = f.readline()
  return "\t" if head.count("\t") > head.count(",") else ","


def table_columns(path: os.PathLike | str) -> list[str]:
  """Header of a CSV/TSV table."""
  path = Path(path)
  try:
    return list(pd.read_csv(path, sep=_sep(path), nrows=0).columns)
  except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
    raise DataFormatError(path, f"not a readable CSV/TSV table: {e}") from None


def read_table(path: os.PathLike | str, columns: Sequence[str] | None = None) -> pd.DataFrame:
  """Reads a CSV/TSV table (separator auto-detected), optionally only some columns.

  Raises:
    DataFormatError: unreadable table or missing columns (naming the file).
  """
  path = Path(path)
  if columns is not None:
    missing = [c for c in columns if c not in table_columns(path)]
    if missing:
      raise DataFormatError(path, f"missing columns {missing}")
  try:
    return pd.read_csv(path, sep=_sep(path), usecols=None if columns is None else list(columns))
  except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as e:
    raise DataFormatError(path, f"not a readable CSV/TSV table: {e}") from None
