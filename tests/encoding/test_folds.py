"""Fold masks: scikit-learn's KFold order unshuffled, a partition when shuffled, and a dataset's fixed split."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from sklearn.model_selection import KFold

from leut.encoding import kfold_test_masks, split_test_mask


def test_unshuffled_folds_are_scikit_learns():
  masks = kfold_test_masks(23, 5)
  for mask, (_, test) in zip(masks, KFold(5).split(np.zeros(23))):
    np.testing.assert_array_equal(np.flatnonzero(mask), test)


def test_shuffled_folds_partition_the_stimuli():
  masks = kfold_test_masks(23, 4, key=jax.random.key(3))
  np.testing.assert_array_equal(masks.sum(0), 1)
  assert sorted(masks.sum(1)) == [5, 6, 6, 6] and not np.array_equal(masks, kfold_test_masks(23, 4))


def test_fixed_split_and_bad_requests():
  np.testing.assert_array_equal(split_test_mask(["train", "test", "train"]), [[False, True, False]])
  with pytest.raises(ValueError, match="both train and test"):
    split_test_mask(["train", "train"])
  with pytest.raises(ValueError, match="n_folds must be between 2 and the number of stimuli"):
    kfold_test_masks(3, 4)
