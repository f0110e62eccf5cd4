"""The in-memory CIFAR-10 type every loader returns (its own module, so `cifar` and `cifar_tfds` both import it)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class CifarData(NamedTuple):
  """CIFAR-10 in memory, images HWC uint8 as stored in the archive."""

  train_images: np.ndarray  # N x 32 x 32 x 3 uint8
  train_labels: np.ndarray  # N int32
  test_images: np.ndarray  # M x 32 x 32 x 3 uint8
  test_labels: np.ndarray  # M int32
  class_names: tuple[str, ...]
