"""Cross-validated best layer: unbiased on pure-noise layers where the naive max is biased upward."""
import numpy as np
import jax

import leut.rsa as rsa


def test_cv_best_layer_unbiased_on_noise_layers():
  rng = np.random.default_rng(0)
  S, L, R = 20, 8, 30
  P = S * (S - 1) // 2
  layers = rng.normal(size=(R, L, P)).astype(np.float32)
  brain = rng.normal(size=(R, P)).astype(np.float32)
  res = jax.vmap(lambda l, b, k: rsa.cross_validated_best_layer(l, b, key=k, n_splits=2))(
      layers, brain, jax.random.split(jax.random.key(0), R))
  naive = np.asarray(res.naive_max)
  cv = np.asarray(res.score)
  se = lambda x: x.std(ddof=1) / np.sqrt(len(x))
  assert naive.mean() > 6 * se(naive)        # the max over 8 null layers is biased upward
  assert abs(cv.mean()) < 3 * se(cv)         # the cross-validated score is centred on 0
  assert res.chosen.shape == (R, 2, 2)


def test_cv_best_layer_finds_signal_layer():
  rng = np.random.default_rng(1)
  S, L = 30, 5
  P = S * (S - 1) // 2
  brain = rng.normal(size=P)
  layers = rng.normal(size=(L, P))
  layers[3] += 2.0 * brain
  res = rsa.cross_validated_best_layer(layers, np.stack([brain, brain + rng.normal(size=P)]),
                                       key=jax.random.key(1), n_splits=3)
  assert np.all(np.asarray(res.chosen) == 3)
  assert float(res.score) > 0.3
