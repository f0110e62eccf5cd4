"""Readouts: PCA equals NumPy's SVD; the random projection keeps distances and depends only on its seed."""

import jax
import numpy as np
from scipy.spatial.distance import pdist

from leut import readout


def test_pca_scores_equal_numpy_svd_up_to_sign():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(15, 40)) @ np.diag(np.linspace(3, 0.1, 40))
  got = np.asarray(readout.pca_scores(x.astype(np.float32), components=5), np.float64)
  xc = x - x.mean(0)
  u, s, _ = np.linalg.svd(xc, full_matrices=False)
  want = u[:, :5] * s[:5]
  want *= np.sign(want[np.abs(want).argmax(0), np.arange(5)])  # the documented sign convention
  np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-3 * s[0])


def test_random_projection_preserves_distances_and_is_deterministic_given_the_seed():
  rng = np.random.default_rng(1)
  x = rng.normal(size=(20, 3 * readout.BLOCK + 123)).astype(np.float32)  # several blocks and a ragged end
  key = jax.random.key(7)
  y = np.asarray(readout.random_projection(x, key, dims=2048))
  ratio = pdist(y) / pdist(x.astype(np.float64))
  assert np.all(np.abs(ratio - 1) < 0.15)  # JL: eps ~ sqrt(8 ln S / K) = 0.12 bounds every pair w.h.p.
  np.testing.assert_array_equal(np.asarray(readout.random_projection(x, key, dims=2048)), y)
  other = np.asarray(readout.random_projection(x, jax.random.key(8), dims=2048))
  assert not np.allclose(other, y)
  # chunks of stimuli projected apart get the same projection (the matrix depends only on the key)
  np.testing.assert_allclose(np.asarray(readout.random_projection(x[:5], key, dims=2048)), y[:5], atol=1e-4)


def test_readouts_are_vmapped_over_seeds():
  rng = np.random.default_rng(2)
  maps = rng.normal(size=(3, 10, 4, 4, 2)).astype(np.float32)
  np.testing.assert_allclose(np.asarray(readout.readout(maps, "mean")), maps.mean(axis=(2, 3)), atol=1e-6)
  pca = np.asarray(readout.readout(maps, "pca", components=4))
  for n in range(3):
    np.testing.assert_allclose(pca[n], np.asarray(readout.pca_scores(maps[n].reshape(10, -1), components=4)), atol=1e-5)
  flat = np.asarray(readout.readout(maps, "flatten", key=jax.random.key(0), dims=16))
  assert flat.shape == (3, 10, 16)
  np.testing.assert_allclose(
    flat[1], np.asarray(readout.random_projection(maps[1].reshape(10, -1), jax.random.key(0), dims=16)), atol=1e-5
  )
