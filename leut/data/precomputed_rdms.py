"""Precomputed brain RDMs in the published layout: ``fmri_rdm_{ROI}_{sub}.npy`` + ``stim_order_{sub}.txt``.

Each ``fmri_rdm_{ROI}_{sub}.npy`` is an (S, S) RDM whose rows follow the stimulus file
names listed one per line in ``stim_order_{sub}.txt`` (PROTOCOL §6.5). The layout
carries no run information; ``write_precomputed_rdms`` adds an optional
``stim_runs_{sub}.txt`` (one run id per stimulus) that ``load_precomputed_rdms``
reads when present. Without it, ``runs_JxS`` holds ``-(1 + s)`` (distinct per
stimulus), so cross-run masks keep every pair.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from leut.data.errors import DataFormatError, missing_dataset
from leut.data.fmri_files import subject_name
from leut.data.things_fmri import DEFAULT_ROIS, BrainData
from leut.data.things_images import concept_of

__all__ = ["load_precomputed_rdms", "write_precomputed_rdms"]


def _read_lines(path: Path) -> list[str]:
  return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def _read_order(path: Path) -> list[str]:
  """A stimulus order file: one name per line, each once."""
  order = _read_lines(path)
  seen = set()
  for i, name in enumerate(order):
    if name in seen:
      raise DataFormatError(
        path, f"stimulus {name!r} is listed twice (again at line {i + 1}); each row of an RDM is one stimulus"
      )
    seen.add(name)
  return order


def check_rdm(m: np.ndarray, path) -> None:
  """Raise DataFormatError unless `m` is a finite, symmetric dissimilarity matrix with a zero diagonal."""
  if not np.isfinite(m).all():
    raise DataFormatError(path, "RDM has non-finite entries")
  tol = 1e-5 * max(1.0, float(np.abs(m).max(initial=0.0)))
  if not np.allclose(m, m.T, rtol=0, atol=tol):
    raise DataFormatError(path, f"RDM is not symmetric (max |d_ij - d_ji| = {np.abs(m - m.T).max():.3g})")
  if np.abs(np.diagonal(m)).max(initial=0.0) > tol:
    raise DataFormatError(
      path,
      f"RDM diagonal is not zero (max |d_ii| = {np.abs(np.diagonal(m)).max():.3g}): a similarity matrix? An RDM holds "
      "dissimilarities, 0 between a stimulus and itself",
    )


def _order_file(folder: Path, sub: str, first: str) -> Path:
  path = folder / f"stim_order_{sub}.txt"
  if path.is_file():
    return path
  fallback = folder / f"stim_order_{first}.txt"  # the author used sub-01's order for everyone
  if fallback.is_file():
    return fallback
  raise missing_dataset("brain_rdms", path, "precomputed stimulus order missing")


def load_precomputed_rdms(
  rdm_dir: os.PathLike | str, rois: Sequence[str] = DEFAULT_ROIS, subjects: Sequence[str | int] | None = None
) -> BrainData:
  """Loads precomputed per-ROI, per-subject RDMs (``data.brain_rdms_dir``).

  Args:
    rdm_dir: folder with ``fmri_rdm_{ROI}_{sub}.npy`` and ``stim_order_{sub}.txt``.
    rois: ROI names as they appear in the file names.
    subjects: default: every ``sub-XX`` that has an RDM file.

  Returns:
    BrainData (float32 RDMs). Every subject's order must equal the first's.

  Raises:
    MissingDatasetError: missing folder or file. DataFormatError: wrong shapes,
      asymmetric or non-finite RDMs or a non-zero diagonal (a similarity matrix),
      a stimulus listed twice, mismatched stimulus orders.
  """
  folder = Path(rdm_dir).expanduser()
  if not folder.is_dir():
    raise missing_dataset("brain_rdms", folder, "precomputed RDM folder")
  if subjects is None:
    found = {
      m.group(1) for f in folder.glob("fmri_rdm_*_sub-*.npy") if (m := re.search(r"_(sub-[0-9A-Za-z]+)\.npy$", f.name))
    }
    subs = sorted(found)
  else:
    subs = [subject_name(s) for s in subjects]
  if not subs:
    raise missing_dataset("brain_rdms", folder, "no fmri_rdm_{ROI}_{sub}.npy files")
  ref_path = _order_file(folder, subs[0], subs[0])
  order = _read_order(ref_path)
  s = len(order)
  rdms = np.empty((len(rois), len(subs), s, s), np.float32)
  runs = np.tile(-(1 + np.arange(s)), (len(subs), 1))
  for j, sub in enumerate(subs):
    path = _order_file(folder, sub, subs[0])
    own = _read_order(path)
    if own != order:
      raise DataFormatError(
        path, f"mismatched stimulus orders: {sub}'s order differs from {subs[0]}'s ({ref_path.name})"
      )
    runs_path = folder / f"stim_runs_{sub}.txt"
    if runs_path.is_file():
      r = np.array([int(x) for x in _read_lines(runs_path)])
      if r.shape != (s,):
        raise DataFormatError(runs_path, f"{r.size} run ids for {s} stimuli")
      runs[j] = r
    for i, roi in enumerate(rois):
      f = folder / f"fmri_rdm_{roi}_{sub}.npy"
      if not f.is_file():
        raise missing_dataset("brain_rdms", f, f"precomputed RDM for ROI {roi!r}, {sub}")
      try:
        m = np.load(f, allow_pickle=False)
      except (ValueError, OSError, EOFError) as e:
        raise DataFormatError(f, f"not a readable .npy file: {e}") from None
      if m.shape != (s, s):
        raise DataFormatError(f, f"shape {m.shape} does not match the {s} stimuli of {path.name}")
      check_rdm(m, f)
      rdms[i, j] = m
  concepts = tuple(concept_of(x) or Path(x).stem for x in order)
  return BrainData(tuple(order), concepts, tuple(subs), tuple(rois), rdms, runs)


def write_precomputed_rdms(brain: BrainData, out_dir: os.PathLike | str) -> Path:
  """Writes ``brain`` in the published layout (plus ``stim_runs_{sub}.txt``); returns the folder."""
  out = Path(out_dir)
  out.mkdir(parents=True, exist_ok=True)
  for j, sub in enumerate(brain.subjects):
    (out / f"stim_order_{sub}.txt").write_text("\n".join(brain.stimuli) + "\n")
    (out / f"stim_runs_{sub}.txt").write_text("\n".join(str(int(r)) for r in brain.runs_JxS[j]) + "\n")
    for i, roi in enumerate(brain.rois):
      np.save(out / f"fmri_rdm_{roi}_{sub}.npy", brain.rdms_RxJxSxS[i, j])
  return out
