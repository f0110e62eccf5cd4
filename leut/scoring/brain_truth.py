"""results/brain_truth.csv: do the evaluated brain RDMs of a synthetic release recover its simulated ground truth?

Every synthetic release (`leut.data.synthetic`, `leut.data.synthetic_macaque`) leaves a `simulation_truth.npz`: the
noise-free features each region was simulated from. Its correlation-distance RDM (`simulated_brain.ground_truth_rdms`)
is the RDM a perfect model of that region would have. This table scores that truth RDM like a model, against the RDMs
the evaluation actually uses (after the release's loader: files read, time bins chosen, repetitions averaged,
stimuli selected), so a loader that loses or scrambles the signal shows here before any network is blamed:

  roi, subject, n_stimuli, rho, p
    subject = each subject: Spearman ρ of the truth RDM with that subject's RDM; subject = 'mean': with the subject-
    mean RDM, and p its one-sided stimulus-label permutation p (`rsa.permutation_test`, 1000 relabellings).

The report's ground-truth check (d) asks for a significant positive ρ with the subject-mean RDM
(`leut.report.ground_truth`).
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from leut import rsa
from leut.data.simulated_brain import TRUTH_FILE, ground_truth_rdms

COLUMNS = ["roi", "subject", "n_stimuli", "rho", "p"]
N_PERM = 1000


def truth_dir(*folders) -> Path | None:
  """The first of `folders` that holds a simulation truth file (None for real data, which has none)."""
  for folder in folders:
    if folder is not None and (Path(folder) / TRUTH_FILE).exists():
      return Path(folder)
  return None


def truth_table(brain, folder, *, seed: int = 0) -> pd.DataFrame:
  """`COLUMNS` rows for every ROI of `brain` (`BrainData`: rdms_RxJxSxS, rois, subjects, stimuli) whose truth the
  release in `folder` holds."""
  rdms = np.asarray(brain.rdms_RxJxSxS, np.float32)
  truth = ground_truth_rdms(folder, list(brain.stimuli), tuple(brain.rois))
  rows = []
  for r, roi in enumerate(brain.rois):
    t = jnp.asarray(truth[roi], jnp.float32)
    per_subject = np.asarray(rsa.compare(t[None], jnp.asarray(rdms[r])), np.float64)
    for subject, rho in zip(brain.subjects, per_subject):
      rows.append(dict(roi=roi, subject=subject, n_stimuli=len(brain.stimuli), rho=float(rho), p=np.nan))
    test = rsa.permutation_test(
      t, jnp.asarray(rdms[r].mean(0)), key=jax.random.key(seed), n_perm=N_PERM, alternative="greater"
    )
    rows.append(dict(roi=roi, subject="mean", n_stimuli=len(brain.stimuli), rho=float(test.observed), p=float(test.p)))
  return pd.DataFrame(rows, columns=COLUMNS)
