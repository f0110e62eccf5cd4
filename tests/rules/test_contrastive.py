"""Contrastive learning: NT-Xent against a float64 NumPy loop and a closed form; labels reach only the readout."""

import jax
import jax.numpy as jnp
import numpy as np

from leut.models import cnn
from leut.rules import base, contrastive


def _reference(z_a, z_b, temperature):
  """ℓ_i = −log(exp(s_ip)/Σ_{k≠i} exp(s_ik)) by explicit loops over the 2N views, in float64."""
  views = [np.asarray(v, np.float64) for v in list(z_a) + list(z_b)]
  n = len(z_a)
  total = 0.0
  for i, zi in enumerate(views):
    sims = [float(zi @ zk / (np.linalg.norm(zi) * np.linalg.norm(zk)) / temperature) for zk in views]
    partner = i + n if i < n else i - n
    denominator = sum(np.exp(s) for k, s in enumerate(sims) if k != i)
    total += -np.log(np.exp(sims[partner]) / denominator)
  return total / (2 * n)


def test_nt_xent_matches_a_float64_loop():
  z_a = jax.random.normal(jax.random.key(0), (5, 7))
  z_b = z_a + 0.7 * jax.random.normal(jax.random.key(1), (5, 7))
  for temperature in (0.1, 0.5, 2.0):
    got = float(contrastive.nt_xent(z_a, z_b, temperature))
    np.testing.assert_allclose(got, _reference(z_a, z_b, temperature), rtol=1e-5)


def test_nt_xent_of_identical_views_of_orthogonal_images_is_its_closed_form():
  """z_a = z_b = 3·e_n: s_pos = 1/τ, every other s is 0, so ℓ = −log(e^{1/τ} / (e^{1/τ} + 2(N − 1)))."""
  n, tau = 4, 0.5
  z = 3.0 * jnp.eye(n, 6)
  want = -np.log(np.exp(1 / tau) / (np.exp(1 / tau) + 2 * (n - 1)))
  np.testing.assert_allclose(float(contrastive.nt_xent(z, z, tau)), want, rtol=1e-6)


def test_labels_train_only_the_linear_readout():
  net = cnn.network((4, 8, 8), 16)
  rule = contrastive.contrastive(net)
  params, model_state = net.init(jax.random.key(0))
  x = jax.random.normal(jax.random.key(1), (4, 32, 32, 3))
  update = jax.jit(lambda y: rule.update(params, model_state, base.EmptyState(), base.Batch(x, y), jax.random.key(2)))
  labels = jnp.arange(4, dtype=jnp.int32)
  out, other = update(labels), update(labels[::-1] + 3)
  for name in ("conv1", "conv2", "conv3", "fc1"):
    jax.tree.map(np.testing.assert_array_equal, out.grads[name], other.grads[name])
    assert float(jnp.abs(out.grads[name]["kernel"]).max()) > 0  # NT-Xent trains everything below the readout
  assert not np.allclose(out.grads["fc2"]["kernel"], other.grads["fc2"]["kernel"])
  assert float(out.metrics["nt_xent"]) > 0 and np.isfinite(float(out.metrics["loss"]))
