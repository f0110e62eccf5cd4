"""Tiny hand-made THINGS-fMRI releases with planted betas, for the data-layer tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from leut.data.response_h5 import write_response_h5

CONCEPTS = ("apple", "bee", "cat", "dog", "egg", "fig", "ice_cream")


def tiny_subject(seed: int = 0, *, n_voxels: int = 40, shuffle_trials: bool = False):
  """(betas_VxT, voxel table, stimulus table) of one hand-made subject.

  Each concept has train images _01s.._03s (shown once; _01s in session 1) and the
  concepts 'bee' and 'egg' have a test image _14s shown 3 times.
  """
  rng = np.random.default_rng(seed)
  rows = []
  for c in CONCEPTS:
    for k in (3, 1, 2):  # written out of alphabetical order on purpose
      rows.append(("train", 1 if k == 1 else 2, c, f"{c}_{k:02d}s.jpg"))
  for c in ("bee", "egg"):
    for _ in range(3):
      rows.append(("test", 1 + int(rng.integers(2)), c, f"{c}_14s.jpg"))
  stim = pd.DataFrame(rows, columns=["trial_type", "session", "concept", "stimulus"])
  stim["run"] = rng.integers(1, 4, len(stim))
  stim = stim.sort_values(["session", "run"], kind="stable").reset_index(drop=True)
  if shuffle_trials:
    stim = stim.sample(frac=1.0, random_state=seed).reset_index(drop=True)
  stim["subject_id"] = 1
  stim["trial_id"] = stim.groupby(["session", "run"]).cumcount()
  stim = stim[["trial_type", "session", "run", "subject_id", "trial_id", "stimulus", "concept"]]
  vox = pd.DataFrame(
    {
      "voxel_id": np.arange(n_voxels) * 7 + 3,
      "subject_id": 1,
      "voxel_x": 0,
      "voxel_y": 0,
      "voxel_z": 0,
      "nc_singletrial": rng.random(n_voxels),
      "prf-size": np.nan,
    }
  )
  roi = rng.integers(0, 6, n_voxels)
  for name, code in (("V1", 0), ("V2", 1), ("V3", 5), ("hV4", 2), ("lLOC", 3), ("rLOC", 4)):
    vox[name] = (roi == code).astype(int)
  vox["IT"] = (rng.random(n_voxels) < 0.4).astype(int)  # overlaps the others
  vox["lFFA"] = 0
  betas = rng.normal(3.0, 2.0, (n_voxels, len(stim))).astype(np.float32)
  return betas, vox, stim


def write_subject(
  folder: Path,
  sub: str,
  betas_VxT,
  vox: pd.DataFrame,
  stim: pd.DataFrame,
  *,
  naming: str = "figshare",
  ext: str = ".csv",
) -> None:
  """Writes one subject's three files under ``folder`` in the given naming."""
  folder.mkdir(parents=True, exist_ok=True)
  sep = "\t" if ext == ".tsv" else ","
  if naming == "figshare":
    names = (f"{sub}_ResponseData.h5", f"{sub}_VoxelMetadata{ext}", f"{sub}_StimulusMetadata{ext}")
  else:
    names = (
      f"{sub}_task-things_voxel-wise-responses.h5",
      f"{sub}_task-things_voxel-metadata{ext}",
      f"{sub}_task-things_stimulus-metadata{ext}",
    )
  write_response_h5(folder / names[0], vox["voxel_id"], range(betas_VxT.shape[1]), [betas_VxT])
  vox.to_csv(folder / names[1], sep=sep, index=False)
  stim.to_csv(folder / names[2], sep=sep, index=False)
