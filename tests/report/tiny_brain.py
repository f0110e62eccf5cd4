"""A stand-in for `things_fmri.BrainData` with only what the statistics read, and a float64 correlation RDM."""

from typing import NamedTuple

import numpy as np


class Brain(NamedTuple):
  rdms_RxJxSxS: np.ndarray
  rois: tuple
  subjects: tuple


def correlation_rdm(x_SxU: np.ndarray) -> np.ndarray:
  """1 - Pearson correlation between rows (float64)."""
  c = x_SxU - x_SxU.mean(1, keepdims=True)
  c /= np.linalg.norm(c, axis=1, keepdims=True)
  return 1 - c @ c.T
