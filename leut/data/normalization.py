"""Image normalisation constants shared by training and stimulus preprocessing.

The models are trained on CIFAR-10 and evaluated on THINGS images normalised with
the **CIFAR** channel statistics (PROTOCOL §2.1, §3.1), so both sides import them
from here.
"""

from __future__ import annotations

import numpy as np

__all__ = ["CIFAR_MEAN", "CIFAR_STD", "normalize_01"]

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.247, 0.243, 0.261)


def normalize_01(images_NxHxWx3: np.ndarray) -> np.ndarray:
  """Maps RGB images in [0, 1] to CIFAR-normalised float32: (x - mean) / std per channel."""
  mean = np.asarray(CIFAR_MEAN, np.float32)
  std = np.asarray(CIFAR_STD, np.float32)
  return ((np.asarray(images_NxHxWx3, np.float32) - mean) / std).astype(np.float32)
