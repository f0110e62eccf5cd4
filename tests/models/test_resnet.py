"""The residual network: a unit equals a float64 NumPy/SciPy reference, evaluation is per stimulus, training moves
every BatchNorm's running statistics."""

import jax
import jax.numpy as jnp
import numpy as np
from scipy import signal

from leut.models import resnet

NET = resnet.network((4, 6), 1, 8)  # conv1 (stem), res1 (4 → 4, identity skip), res2 (4 → 6, pooled, 1x1 skip)


def _random_tree(key, tree, low=0.5, high=1.5):
  leaves, treedef = jax.tree.flatten(tree)
  keys = jax.random.split(key, len(leaves))
  return treedef.unflatten([jax.random.uniform(k, x.shape, minval=low, maxval=high) for k, x in zip(keys, leaves)])


def _conv_same(x, w):
  out = np.zeros(x.shape[:3] + (w.shape[3],))
  for n in range(x.shape[0]):
    for o in range(w.shape[3]):
      for c in range(x.shape[3]):
        out[n, :, :, o] += signal.correlate2d(x[n, :, :, c], w[:, :, c, o], mode="same", boundary="fill")
  return out


def _bn(z, p, s):
  return (z - s["mean"]) / np.sqrt(s["var"] + 1e-5) * p["scale"] + p["bias"]


def test_residual_unit_with_pool_and_projection_equals_a_float64_reference():
  params, state = NET.init(jax.random.key(0))
  params = dict(
    params, **{k: _random_tree(jax.random.key(i), v) for i, (k, v) in enumerate(params.items()) if "bn" in k}
  )
  state = _random_tree(jax.random.key(9), state)
  x = jax.random.normal(jax.random.key(1), (2, 8, 8, 4))
  got = np.asarray(NET.blocks[2].apply(params, state, x, train=False).out)
  p = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
  s = jax.tree.map(lambda a: np.asarray(a, np.float64), state)
  h = np.asarray(x, np.float64).reshape(2, 4, 2, 4, 2, 4).max(axis=(2, 4))
  a = np.maximum(_bn(_conv_same(h, p["res2_conv_a"]["kernel"]), p["res2_bn_a"], s["res2_bn_a"]), 0)
  b = _bn(_conv_same(a, p["res2_conv_b"]["kernel"]), p["res2_bn_b"], s["res2_bn_b"])
  skip = _bn(h @ p["res2_conv_skip"]["kernel"][0, 0], p["res2_bn_skip"], s["res2_bn_skip"])
  np.testing.assert_allclose(got, np.maximum(b + skip, 0), rtol=1e-4, atol=1e-4)


def test_evaluation_is_per_stimulus_and_training_moves_every_running_statistic():
  params, state = NET.init(jax.random.key(0))
  x = jax.random.normal(jax.random.key(1), (4, 32, 32, 3))
  strangers = 3.0 + 2.0 * jax.random.normal(jax.random.key(2), (3, 32, 32, 3))
  alone = NET.features(params, state, x[:1])
  mixed = NET.features(params, state, jnp.concatenate([x[:1], strangers]))
  for layer in NET.feature_layers:
    np.testing.assert_allclose(alone[layer][0], mixed[layer][0], rtol=1e-5, atol=1e-5)
  _, _, new_state = NET.apply(params, state, x, train=True)
  assert set(new_state) == set(state) == {"bn1", "res1_bn_a", "res1_bn_b", "res2_bn_a", "res2_bn_b", "res2_bn_skip"}
  for bn in state:
    assert not np.allclose(new_state[bn]["mean"], state[bn]["mean"]), bn
