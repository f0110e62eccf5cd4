"""Cross-validated best layer: unbiased on pure-noise layers where the naive max is biased upward."""

import jax
import numpy as np

import leut.rsa as rsa


def test_cv_best_layer_unbiased_on_noise_layers():
  rng = np.random.default_rng(0)
  S, L, R = 20, 8, 30
  P = S * (S - 1) // 2
  layers = rng.normal(size=(R, L, P)).astype(np.float32)
  brain = rng.normal(size=(R, P)).astype(np.float32)
  res = jax.vmap(lambda l, b, k: rsa.cross_validated_best_layer(l, b, key=k, n_splits=2))(
    layers, brain, jax.random.split(jax.random.key(0), R)
  )
  naive = np.asarray(res.naive_max)
  cv = np.asarray(res.score)
  se = lambda x: x.std(ddof=1) / np.sqrt(len(x))
  assert naive.mean() > 6 * se(naive)  # the max over 8 null layers is biased upward
  assert abs(cv.mean()) < 3 * se(cv)  # the cross-validated score is centred on 0
  assert res.chosen.shape == (R, 2, 2)


def test_cv_best_layer_finds_signal_layer():
  rng = np.random.default_rng(1)
  S, L = 30, 5
  P = S * (S - 1) // 2
  brain = rng.normal(size=P)
  layers = rng.normal(size=(L, P))
  layers[3] += 2.0 * brain
  res = rsa.cross_validated_best_layer(
    layers, np.stack([brain, brain + rng.normal(size=P)]), key=jax.random.key(1), n_splits=3
  )
  assert np.all(np.asarray(res.chosen) == 3)
  assert float(res.score) > 0.3


def test_cv_best_layer_equals_a_direct_computation_with_compare():
  """Choices and held-out scores equal choosing and scoring each half with `rsa.compare` (pair-masked Spearman)."""
  rng = np.random.default_rng(2)
  S, L, J = 24, 4, 3
  P = S * (S - 1) // 2
  brain_JxP = rng.normal(size=(J, P)).astype(np.float32)
  layers_NxLxP = (rng.normal(size=(2, L, P)) + np.linspace(0, 0.4, L)[None, :, None] * brain_JxP.mean(0)).astype(
    np.float32
  )
  layers_NxLxP[0, 1, :40] = layers_NxLxP[0, 1, 0]  # ties
  mask_P = rng.uniform(size=P) > 0.2
  key = jax.random.key(5)
  res = rsa.cross_validated_best_layer(layers_NxLxP, brain_JxP, key=key, n_splits=3, pair_mask=mask_P)
  iu, ju = np.triu_indices(S, 1)
  for s, k in enumerate(jax.random.split(key, 3)):
    half_S = np.asarray(jax.random.permutation(k, S) < S // 2)
    in_a = half_S[iu] & half_S[ju] & mask_P
    in_b = ~half_S[iu] & ~half_S[ju] & mask_P
    sa = np.asarray(rsa.compare(layers_NxLxP[:, :, None], brain_JxP, pair_mask=in_a)).mean(-1)  # NxL
    sb = np.asarray(rsa.compare(layers_NxLxP[:, :, None], brain_JxP, pair_mask=in_b)).mean(-1)
    la, lb = sa.argmax(-1), sb.argmax(-1)
    np.testing.assert_array_equal(np.asarray(res.chosen)[:, s], np.stack([la, lb], -1))
    held = np.stack([sb[np.arange(2), la], sa[np.arange(2), lb]], -1)
    np.testing.assert_allclose(np.asarray(res.held_out)[:, s], held, atol=1e-6)
  full = np.asarray(rsa.compare(layers_NxLxP[:, :, None], brain_JxP, pair_mask=mask_P)).mean(-1)
  np.testing.assert_allclose(np.asarray(res.naive_max), full.max(-1), atol=1e-6)
