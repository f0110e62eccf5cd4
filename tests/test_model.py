"""The protocol CNN: evaluation features are per-stimulus (batch-independent), layers match PyTorch semantics."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import signal

from leut.models import cnn, layers


def _trained_looking_state(key):
  """A network whose BatchNorm running stats and affine params are far from their identity init."""
  params, state = cnn.init(key)
  k = jax.random.split(key, 6)
  for i, bn in enumerate(("bn1", "bn2", "bn3")):
    c = state[bn]["mean"].shape[0]
    state[bn] = {"mean": jax.random.normal(k[i], (c,)), "var": 0.5 + jax.random.uniform(k[i + 3], (c,))}
    params[bn] = {"scale": 1.0 + 0.3 * jax.random.normal(k[i], (c,)), "bias": 0.1 * jnp.ones((c,))}
  return params, state


def test_eval_features_do_not_depend_on_batch_companions_or_size():
  params, state = _trained_looking_state(jax.random.PRNGKey(0))
  x = jax.random.normal(jax.random.PRNGKey(1), (6, 64, 64, 3))
  other = 5.0 + 3.0 * jax.random.normal(jax.random.PRNGKey(2), (6, 64, 64, 3))  # very different statistics
  alone = cnn.features(params, state, x[:1])
  with_batch = cnn.features(params, state, x)
  with_strangers = cnn.features(params, state, jnp.concatenate([x[:1], other]))
  for layer in cnn.FEATURE_LAYERS:
    np.testing.assert_allclose(alone[layer][0], with_batch[layer][0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(alone[layer][0], with_strangers[layer][0], rtol=1e-5, atol=1e-5)


def test_training_mode_uses_batch_statistics_and_evaluation_does_not():
  params, state = _trained_looking_state(jax.random.PRNGKey(0))
  x = jax.random.normal(jax.random.PRNGKey(1), (4, 32, 32, 3))
  _, _, new_state = cnn.apply(params, state, x, train=True)
  _, _, same_state = cnn.apply(params, state, x, train=False)
  assert not np.allclose(new_state["bn1"]["mean"], state["bn1"]["mean"])
  for bn in ("bn1", "bn2", "bn3"):
    np.testing.assert_array_equal(same_state[bn]["mean"], state[bn]["mean"])


def test_conv3x3_equals_scipy_cross_correlation():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(2, 7, 9, 3))
  w = rng.normal(size=(3, 3, 3, 4))
  got = np.asarray(layers.conv3x3(jnp.asarray(x, jnp.float32), jnp.asarray(w, jnp.float32)))
  want = np.zeros((2, 7, 9, 4))
  for n in range(2):
    for o in range(4):
      for c in range(3):
        want[n, :, :, o] += signal.correlate2d(x[n, :, :, c], w[:, :, c, o], mode="same", boundary="fill")
  np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_batch_norm_train_matches_pytorch_formulas():
  rng = np.random.default_rng(1)
  x = rng.normal(2.0, 3.0, size=(4, 5, 5, 3))
  mean0, var0 = rng.normal(size=3), 1 + rng.uniform(size=3)
  y, (m, v) = layers.batch_norm_train(jnp.asarray(x, jnp.float32), jnp.ones(3), jnp.zeros(3),
                                      jnp.asarray(mean0, jnp.float32), jnp.asarray(var0, jnp.float32))
  flat = x.reshape(-1, 3)
  np.testing.assert_allclose(y, (x - flat.mean(0)) / np.sqrt(flat.var(0) + 1e-5), rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(m, 0.9 * mean0 + 0.1 * flat.mean(0), rtol=1e-5)
  np.testing.assert_allclose(v, 0.9 * var0 + 0.1 * flat.var(0, ddof=1), rtol=1e-5)


@pytest.mark.parametrize("px,window", [(32, 1), (64, 2), (224, 7)])
def test_fc1_reads_a_4x4_adaptive_pool_at_every_resolution(px, window):
  x = jnp.arange(2 * (px // 8) ** 2 * 3, dtype=jnp.float32).reshape(2, px // 8, px // 8, 3)
  pooled = np.asarray(layers.adaptive_avg_pool(x, 4))
  ref = np.asarray(x).reshape(2, 4, window, 4, window, 3).mean(axis=(2, 4))
  np.testing.assert_allclose(pooled, ref)
  params, state = cnn.init(jax.random.PRNGKey(0))
  feats = cnn.features(params, state, jnp.zeros((1, px, px, 3)))
  assert feats["fc1"].shape == (1, 512) and feats["conv1"].shape == (1, 32)


def test_same_key_gives_identical_weights():
  a, _ = cnn.init(jax.random.PRNGKey(3))
  b, _ = cnn.init(jax.random.PRNGKey(3))
  jax.tree.map(np.testing.assert_array_equal, a, b)
  bound = 1 / np.sqrt(27)
  assert np.abs(np.asarray(a["conv1"]["kernel"])).max() <= bound
