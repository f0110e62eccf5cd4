"""Random symmetric RDM-like matrices for the RSA tests."""

import numpy as np


def symmetric(rng, S, decimals=None):
  """A symmetric S x S float32 matrix with a zero diagonal; `decimals` rounds first to create ties."""
  x = rng.normal(size=(S, S))
  if decimals is not None:
    x = np.round(x, decimals)
  x = x + x.T
  np.fill_diagonal(x, 0)
  return x.astype(np.float32)
