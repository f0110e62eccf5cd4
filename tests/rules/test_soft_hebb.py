"""SoftHebb: the update against a float64 per-patch NumPy loop, and its locality (no labels, nothing from above)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from leut.models import cnn
from leut.rules import base, soft_hebb

NET = cnn.network((4, 8, 8), 16)


def _reference(pre_NxHxWxC, kernel, temperature):
  """Δw_o = mean over positions of y_o (x − u_o w_o), looping over positions with explicit zero-padded patches."""
  pre, w = np.asarray(pre_NxHxWxC, np.float64), np.asarray(kernel, np.float64)
  k = w.shape[0]
  n, h, wd, c = pre.shape
  padded = np.pad(pre, ((0, 0), (k // 2, k // 2), (k // 2, k // 2), (0, 0)))
  w_flat = w.reshape(-1, w.shape[-1])  # (k*k*C) x O
  total = np.zeros_like(w_flat)
  for i in range(n):
    for y in range(h):
      for x in range(wd):
        patch = padded[i, y : y + k, x : x + k, :].reshape(-1)
        u = patch @ w_flat
        e = np.exp((u - u.max()) / temperature)
        soft = e / e.sum()
        for o in range(w_flat.shape[1]):
          total[:, o] += soft[o] * (patch - u[o] * w_flat[:, o])
  return (total / (n * h * wd)).reshape(w.shape)


@pytest.mark.parametrize("size", [3, 1])
def test_update_matches_a_float64_patch_loop(size):
  pre = jax.random.normal(jax.random.key(0), (2, 4, 5, 3))
  kernel = 0.4 * jax.random.normal(jax.random.key(1), (size, size, 3, 4))
  got = soft_hebb.soft_hebb_update(pre, kernel, 0.5)
  np.testing.assert_allclose(np.asarray(got), _reference(pre, kernel, 0.5), rtol=1e-4, atol=1e-6)


def test_conv_updates_are_unsupervised_and_layer_local():
  """Permuting the labels changes the readout's gradient but no conv update; changing conv3 leaves conv1's."""
  rule = soft_hebb.soft_hebb(NET)
  params, model_state = NET.init(jax.random.key(0))
  x = jax.random.normal(jax.random.key(1), (4, 32, 32, 3))
  update = jax.jit(lambda p, y: rule.update(p, model_state, base.EmptyState(), base.Batch(x, y), jax.random.key(2)))
  labels = jnp.arange(4, dtype=jnp.int32)
  out, shuffled = update(params, labels), update(params, labels[::-1] + 3)
  for conv in ("conv1", "conv2", "conv3"):
    np.testing.assert_array_equal(out.grads[conv]["kernel"], shuffled.grads[conv]["kernel"])
  assert not np.allclose(out.grads["fc2"]["kernel"], shuffled.grads["fc2"]["kernel"])
  other = dict(params, conv3=dict(params["conv3"], kernel=-params["conv3"]["kernel"]))
  np.testing.assert_array_equal(update(other, labels).grads["conv1"]["kernel"], out.grads["conv1"]["kernel"])
  # the conv direction is minus the SoftHebb update of that conv on its own input (here conv1: the image)
  np.testing.assert_allclose(
    out.grads["conv1"]["kernel"], -soft_hebb.soft_hebb_update(x, params["conv1"]["kernel"], 0.1), rtol=1e-5, atol=1e-8
  )
