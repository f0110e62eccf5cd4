"""RDM kernels against scipy.spatial.distance.pdist; constant-feature handling."""

import jax
import numpy as np
import pytest
from scipy.spatial.distance import pdist
from scipy.spatial.distance import squareform as sp_squareform

import leut.rsa as rsa


@pytest.mark.parametrize("metric", ["correlation", "euclidean", "cosine"])
def test_rdm_matches_pdist_batched(metric):
  rng = np.random.default_rng(0)
  feats = rng.normal(size=(2, 3, 15, 40)).astype(np.float32) + 0.5
  out = np.asarray(jax.jit(rsa.rdm, static_argnames="metric")(feats, metric=metric))
  assert out.shape == (2, 3, 15, 15)
  for i in range(2):
    for j in range(3):
      ref = sp_squareform(pdist(feats[i, j].astype(np.float64), metric))
      np.testing.assert_allclose(out[i, j], ref, atol=2e-5)


def test_upper_tri_order_and_squareform_roundtrip():
  rng = np.random.default_rng(1)
  m = sp_squareform(pdist(rng.normal(size=(9, 4))))
  iu = np.triu_indices(9, k=1)
  vec = np.asarray(rsa.upper_tri(m))
  np.testing.assert_allclose(vec, m[iu], rtol=1e-6)
  np.testing.assert_allclose(np.asarray(rsa.squareform(vec)), m, atol=1e-6)


def test_constant_rows_are_flagged_and_never_nan():
  rng = np.random.default_rng(2)
  feats = np.abs(rng.normal(size=(2, 8, 20))).astype(np.float32)
  feats[1, 3] = 0.0  # dead ReLU response
  feats[1, 5] = 2.0  # constant, non-zero
  mask = np.asarray(rsa.constant_rows(feats))
  assert mask.sum() == 2 and mask[1, 3] and mask[1, 5]
  d = np.asarray(jax.jit(rsa.rdm)(feats))
  assert np.all(np.isfinite(d))
  np.testing.assert_allclose(d[1, 3, [0, 1, 2, 4]], 1.0, atol=1e-6)  # documented: r := 0 -> distance 1
  assert d[1, 3, 3] == 0.0
  score = rsa.compare(d[1], d[0])
  assert np.isfinite(float(score))


def test_check_features_names_layer_and_count():
  feats = np.ones((2, 6, 5), np.float32)
  feats[:, :4] = np.random.default_rng(3).normal(size=(2, 4, 5))
  with pytest.raises(rsa.DegenerateFeaturesError, match=r"conv3/stdp: 4 of 6 stimuli") as e:
    rsa.check_features(feats, name="conv3/stdp")
  assert e.value.n_constant == 4 and e.value.name == "conv3/stdp"
  rsa.check_features(feats[:, :4], name="ok")  # no error
