"""results/brain_truth.csv: do the evaluated brain RDMs of a synthetic release recover its simulated ground truth?

Every synthetic release (`leut.data.synthetic`, `leut.data.synthetic_macaque`) leaves a `simulation_truth.npz`: the
noise-free features each region was simulated from. Its correlation-distance RDM (`simulated_brain.ground_truth_rdms`)
is the RDM a perfect model of that region would have. This table scores that truth RDM like a model, against the RDMs
the evaluation actually uses (after the release's loader: files read, time bins chosen, repetitions averaged,
stimuli selected), so a loader that loses or scrambles the signal shows here before any network is blamed:

  roi, subject, n_stimuli, rho, p
    subject = each subject: Spearman ρ of the truth RDM with that subject's RDM; subject = 'mean': with the subject-
    mean RDM, and p its one-sided stimulus-label permutation p (`mantel_p`, `N_PERM` relabellings).

The report's ground-truth check (d) asks for a significant positive ρ with the subject-mean RDM
(`leut.report.ground_truth`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import rankdata, spearmanr

from leut.data.simulated_brain import TRUTH_FILE, ground_truth_rdms

COLUMNS = ["roi", "subject", "n_stimuli", "rho", "p"]
N_PERM = 200  # floor p = 1/201, enough for the check at 0.05; each relabelling is a gather of S(S-1)/2 ranks


def truth_dir(*folders) -> Path | None:
  """The first of `folders` that holds a simulation truth file (None for real data, which has none)."""
  for folder in folders:
    if folder is not None and (Path(folder) / TRUTH_FILE).exists():
      return Path(folder)
  return None


def truth_table(brain, folder, *, seed: int = 0) -> pd.DataFrame:
  """`COLUMNS` rows for every ROI of `brain` (`BrainData`: rdms_RxJxSxS, rois, subjects, stimuli) whose truth the
  release in `folder` holds. NumPy and SciPy only: it runs once per evaluation, so nothing is compiled for it."""
  rdms = np.asarray(brain.rdms_RxJxSxS, np.float64)
  S = len(brain.stimuli)
  truth = ground_truth_rdms(folder, list(brain.stimuli), tuple(brain.rois))
  perms_NxS = np.argsort(np.random.default_rng(seed).random((N_PERM, S)), axis=1)
  iu = np.triu_indices(S, 1)
  rows = []
  for r, roi in enumerate(brain.rois):
    for subject, rdm in zip(brain.subjects, rdms[r]):
      rho = float(spearmanr(truth[roi][iu], rdm[iu])[0])
      rows.append(dict(roi=roi, subject=subject, n_stimuli=S, rho=rho, p=np.nan))
    rho, p = mantel_p(truth[roi], rdms[r].mean(0), perms_NxS)
    rows.append(dict(roi=roi, subject="mean", n_stimuli=S, rho=rho, p=p))
  return pd.DataFrame(rows, columns=COLUMNS)


def mantel_p(model_SxS, brain_SxS, perms_NxS, *, chunk: int = 50) -> tuple[float, float]:
  """`(rho, p)`: Spearman ρ of two RDMs' upper triangles and its one-sided stimulus-label permutation p
  (Mantel 1967; Nili et al. 2014): the brain RDM's rows and columns permuted together by each of `perms_NxS`,
  p = (1 + #{ρ_perm ≥ ρ}) / (1 + N) (Phipson & Smyth 2010). What `rsa.permutation_test` computes, in NumPy: ranks
  are label invariant, so the brain's are computed once and each relabelling is a gather and a dot product.
  Both are NaN where ρ is undefined (either RDM constant over its pairs, or holding NaN/inf), as in
  `rsa.permutation_test`."""
  S = len(brain_SxS)
  iu, ju = np.triu_indices(S, 1)
  model_P, brain_P = (np.asarray(m, np.float64)[iu, ju] for m in (model_SxS, brain_SxS))
  if not (np.isfinite(model_P).all() and np.isfinite(brain_P).all()) or np.ptp(model_P) == 0 or np.ptp(brain_P) == 0:
    return float("nan"), float("nan")
  z_model = _standardised(rankdata(model_P))
  ranks = rankdata(brain_P)
  centred_SxS = np.zeros((S, S))
  centred_SxS[iu, ju] = centred_SxS[ju, iu] = ranks - ranks.mean()
  scale = np.linalg.norm(centred_SxS[iu, ju])
  rho = float(z_model @ centred_SxS[iu, ju] / scale)
  perms = np.asarray(perms_NxS, np.int64)
  flat = centred_SxS.ravel()
  parts = np.array_split(perms, max(1, len(perms) // chunk))
  null_N = np.concatenate([(flat.take(q[:, iu] * S + q[:, ju]) @ z_model) / scale for q in parts])
  return rho, float((1 + np.sum(null_N >= rho)) / (1 + len(perms)))


def _standardised(v_P: np.ndarray) -> np.ndarray:
  c = v_P - v_P.mean()
  return c / np.linalg.norm(c)
