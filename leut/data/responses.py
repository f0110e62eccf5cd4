"""Response-level brain data (stimuli x neurons or voxels), shared by every brain dataset, and its RDM view.

RSA needs one RDM per region and subject (``BrainData``); encoding models and CKA need the responses themselves,
each neuron's reliability, and a dataset's fixed train/test split where it has one. ``ResponseData`` holds all of
it for any dataset (a macaque recording: region -> ``roi``, animal -> ``subject``; an fMRI release: ROI and
subject), and ``to_brain_data`` gives the RDMs the RSA pipeline consumes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from leut.data.simulated_brain import correlation_rdm
from leut.data.things_fmri import BrainData

__all__ = ["ResponseData", "split_half_reliability", "half_assignments", "trial_means"]

NEUROID_COLUMNS = ("roi", "subject", "neuroid_id", "reliability")


@dataclasses.dataclass(frozen=True, eq=False)
class ResponseData:
  """Trial-averaged responses of N neuroids (neurons, sites or voxels) to S stimuli.

  Attributes:
    dataset: e.g. ``"majajhong2015"``.
    stimuli: S stimulus names, in row order (stimulus ids of a Brain-Score stimulus set, THINGS file names).
    concepts: S category labels (object name, texture family, THINGS concept).
    responses_SxN: float32, averaged over repetitions; NaN where a neuroid never saw a stimulus.
    neuroids: N rows with at least ``roi``, ``subject``, ``neuroid_id`` and ``reliability`` (split-half
      consistency over repetitions, Spearman-Brown corrected, in correlation units; NaN where the data have no
      repetitions); datasets add their own columns (e.g. TVSD's published ``reliab`` and ``oracle``).
    split_S: ``"train"``/``"test"`` per stimulus where the dataset has a fixed split, else None.
    load_images_01: ``(stimuli, px, upsampled) -> (S, px, px, 3)`` float32 RGB in [0, 1] (PROTOCOL §3.1 resizing).
  """

  dataset: str
  stimuli: tuple[str, ...]
  concepts: tuple[str, ...]
  responses_SxN: np.ndarray
  neuroids: pd.DataFrame
  split_S: np.ndarray | None
  load_images_01: Callable[..., np.ndarray] | None = None

  def __post_init__(self):
    s, n = len(self.stimuli), len(self.neuroids)
    if self.responses_SxN.shape != (s, n) or len(self.concepts) != s:
      raise ValueError(f"responses_SxN {self.responses_SxN.shape} does not match {s} stimuli x {n} neuroids")
    missing = [c for c in NEUROID_COLUMNS if c not in self.neuroids]
    if missing:
      raise ValueError(f"neuroids table lacks columns {missing}")
    if self.split_S is not None and len(self.split_S) != s:
      raise ValueError(f"split_S has {len(self.split_S)} entries for {s} stimuli")

  @property
  def rois(self) -> tuple[str, ...]:
    return tuple(dict.fromkeys(self.neuroids["roi"]))

  @property
  def subjects(self) -> tuple[str, ...]:
    return tuple(dict.fromkeys(self.neuroids["subject"]))

  def mask(self, roi: str, subject: str | None = None, *, min_reliability: float | None = None) -> np.ndarray:
    """Boolean N-mask of one ROI (and subject), optionally of neuroids whose reliability exceeds a threshold."""
    m = np.asarray(self.neuroids["roi"] == roi, bool)
    if subject is not None:
      m = m & np.asarray(self.neuroids["subject"] == subject, bool)
    if min_reliability is not None:
      m = m & (self.neuroids["reliability"].to_numpy() > min_reliability)
    return m

  def select(self, roi: str, subject: str | None = None, *, min_reliability: float | None = None) -> np.ndarray:
    """``responses_SxN`` columns of one ROI (and subject): (S, N_roi)."""
    return self.responses_SxN[:, self.mask(roi, subject, min_reliability=min_reliability)]

  def take_stimuli(self, rows: Sequence[int] | np.ndarray) -> ResponseData:
    """The same neuroids over a subset (or reordering) of the stimuli."""
    rows = np.asarray(rows)
    split = None if self.split_S is None else self.split_S[rows]
    return dataclasses.replace(
      self,
      stimuli=tuple(self.stimuli[i] for i in rows),
      concepts=tuple(self.concepts[i] for i in rows),
      responses_SxN=self.responses_SxN[rows],
      split_S=split,
    )

  def to_brain_data(self, *, min_reliability: float | None = None, where: str = "") -> BrainData:
    """Correlation-distance RDMs (1 - Pearson r between stimulus patterns) per ROI and subject.

    ROIs and subjects keep their order of first appearance. No stimulus has a single run, so ``runs_JxS`` holds
    ``-(1 + s)`` (no pair is masked). A stimulus whose pattern holds a NaN (a neuroid that never saw it) makes its
    row of the RDM NaN, which the RSA engine reports as undefined.

    Raises:
      ValueError: naming ``where`` and the ROI/subject without any (reliable) neuroid.
    """
    rois, subjects = self.rois, self.subjects
    s = len(self.stimuli)
    rdms = np.empty((len(rois), len(subjects), s, s), np.float32)
    for r, roi in enumerate(rois):
      for j, sub in enumerate(subjects):
        pat = self.select(roi, sub, min_reliability=min_reliability)
        if pat.shape[1] < 2:
          raise ValueError(
            f"{where or self.dataset}: ROI {roi!r} of subject {sub!r} has {pat.shape[1]} neuroids"
            + (f" with reliability > {min_reliability}" if min_reliability is not None else "")
            + "; an RDM needs at least 2"
          )
        rdms[r, j] = correlation_rdm(pat)
    runs = np.tile(-(1 + np.arange(s)), (len(subjects), 1))
    return BrainData(tuple(self.stimuli), tuple(self.concepts), subjects, rois, rdms, runs)


def half_assignments(group_P: np.ndarray, n_splits: int, seed: int = 0) -> np.ndarray:
  """Random halves of each group's members: bool (n_splits, P), True for the first half.

  Each stimulus's presentations are ranked by a random key; the first floor(n/2) form half A and the rest half B,
  so halves differ by at most one presentation.
  """
  group_P = np.asarray(group_P)
  _, code = np.unique(group_P, return_inverse=True)
  rng = np.random.default_rng(seed)
  out = np.empty((n_splits, group_P.size), bool)
  counts = np.bincount(code)
  for k in range(n_splits):
    order = np.lexsort((rng.random(group_P.size), code))
    rank = np.empty(group_P.size, np.int64)
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    rank[order] = np.arange(group_P.size) - np.repeat(starts, counts)
    out[k] = rank < counts[code] // 2
  return out


def trial_means(values_PxN: np.ndarray, code_P: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
  """NaN-skipping sums and counts per group: (sum (G, N) float64, count (G, N) int64)."""
  x = np.asarray(values_PxN, np.float64)
  ok = ~np.isnan(x)
  sums = np.zeros((n_groups, x.shape[1]))
  counts = np.zeros((n_groups, x.shape[1]), np.int64)
  np.add.at(sums, code_P, np.where(ok, x, 0.0))
  np.add.at(counts, code_P, ok)
  return sums, counts


def _pearson_columns(a_SxN: np.ndarray, b_SxN: np.ndarray) -> np.ndarray:
  """Pearson r per column over the rows where both are finite; NaN for fewer than 3 rows or zero variance."""
  ok = np.isfinite(a_SxN) & np.isfinite(b_SxN)
  n = ok.sum(axis=0)
  a = np.where(ok, a_SxN, 0.0)
  b = np.where(ok, b_SxN, 0.0)
  with np.errstate(invalid="ignore", divide="ignore"):
    ma, mb = a.sum(0) / n, b.sum(0) / n
    da, db = np.where(ok, a - ma, 0.0), np.where(ok, b - mb, 0.0)
    r = (da * db).sum(0) / np.sqrt((da * da).sum(0) * (db * db).sum(0))
  return np.where(n >= 3, r, np.nan)


def split_half_reliability(half_a_KxSxN: np.ndarray, half_b_KxSxN: np.ndarray) -> np.ndarray:
  """Split-half internal consistency per neuroid, Spearman-Brown corrected: (N,) float64.

  For each of K random splits of the repetitions into halves, r_k = Pearson r over stimuli between the two halves'
  mean responses; their mean r over the splits with a defined r is corrected to the full number of repetitions,
  rho = 2 r / (1 + r) (Spearman 1910; Brown 1910). NaN where no split gives a defined r. This is the per-neuroid
  internal consistency Brain-Score uses as its ceiling (Schrimpf et al. 2018).
  """
  r_KxN = np.stack([_pearson_columns(a, b) for a, b in zip(half_a_KxSxN, half_b_KxSxN)])
  n = np.isfinite(r_KxN).sum(0)
  with np.errstate(invalid="ignore", divide="ignore"):
    r = np.where(n > 0, np.nansum(r_KxN, 0) / np.maximum(n, 1), np.nan)
    return 2 * r / (1 + r)
