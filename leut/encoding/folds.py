"""Held-out folds over stimuli, as fixed-shape masks so every fold runs in one vmapped program."""

from __future__ import annotations

import jax
import numpy as np

__all__ = ["kfold_test_masks", "split_test_mask"]


def kfold_test_masks(n_stimuli: int, n_folds: int, *, key: jax.Array | None = None) -> np.ndarray:
  """K-fold test masks, bool (K, S): each stimulus is held out in exactly one fold.

  Without ``key`` the folds are contiguous blocks, the first ``S % K`` one stimulus larger (the order of
  scikit-learn's ``KFold(n_splits=K)``); with ``key`` the stimuli are permuted first (``jax.random.permutation``).
  """
  if not 2 <= n_folds <= n_stimuli:
    raise ValueError(f"n_folds must be between 2 and the number of stimuli ({n_stimuli}), got {n_folds}")
  order = np.arange(n_stimuli) if key is None else np.asarray(jax.random.permutation(key, n_stimuli))
  sizes = np.full(n_folds, n_stimuli // n_folds) + (np.arange(n_folds) < n_stimuli % n_folds)
  masks = np.zeros((n_folds, n_stimuli), bool)
  for k, (lo, hi) in enumerate(zip(np.r_[0, np.cumsum(sizes)[:-1]], np.cumsum(sizes))):
    masks[k, order[lo:hi]] = True
  return masks


def split_test_mask(split_S) -> np.ndarray:
  """A dataset's fixed split as one fold, bool (1, S): True on its ``"test"`` stimuli.

  Raises:
    ValueError: when the split has no train or no test stimulus.
  """
  test = np.asarray(split_S) == "test"
  if test.all() or not test.any():
    raise ValueError(f"a fixed split needs both train and test stimuli, got {int(test.sum())} test of {test.size}")
  return test[None, :]
