"""The protocol optimisers' PyTorch semantics: `clip_grad_norm_` against a float64 NumPy reference of torch's
formula, and its place in the BP / FA chains."""

import jax.numpy as jnp
import numpy as np
import optax
import pytest

from leut import optimizers


def _torch_clip_reference(grads: dict, max_norm: float) -> dict:
  """torch.nn.utils.clip_grad_norm_ (norm_type 2, foreach=False), written out in float64 NumPy:
  total_norm = ‖(‖g_1‖, ..., ‖g_n‖)‖; clip_coef = max_norm / (total_norm + 1e-6); g *= min(clip_coef, 1)."""
  norms = [np.sqrt(np.sum(np.asarray(g, np.float64) ** 2)) for g in grads.values()]
  total = float(np.sqrt(np.sum(np.square(norms))))
  coef = min(max_norm / (total + 1e-6), 1.0)
  return {k: np.asarray(g, np.float64) * coef for k, g in grads.items()}


@pytest.mark.parametrize("scale", [1e-7, 0.3, 0.999999, 1.0, 3.0, 1e4])
def test_clip_grad_norm_torch_matches_the_pytorch_formula(scale):
  rng = np.random.default_rng(0)
  raw = {"a": rng.normal(size=(3, 4)), "b": rng.normal(size=(5,))}
  norm = np.sqrt(sum(np.sum(v**2) for v in raw.values()))
  grads = {k: jnp.asarray(v / norm * scale, jnp.float32) for k, v in raw.items()}
  tx = optimizers.clip_grad_norm_torch(1.0)
  got, _ = tx.update(grads, tx.init(grads))
  want = _torch_clip_reference({k: np.asarray(v) for k, v in grads.items()}, 1.0)
  for k in grads:
    np.testing.assert_allclose(np.asarray(got[k], np.float64), want[k], rtol=2e-7, atol=0)


def test_clip_differs_from_optax_by_the_1e6_term_where_clipping_binds():
  """At ‖g‖ = 2e-6 and a max norm of 1e-6 the 1e-6 in torch's denominator matters: torch scales g by
  1e-6 / 3e-6, optax by 1e-6 / 2e-6."""
  g = {"w": jnp.asarray([2e-6, 0.0], jnp.float32)}
  torch_like, _ = optimizers.clip_grad_norm_torch(1e-6).update(g, optax.ClipByGlobalNormState())
  plain, _ = optax.clip_by_global_norm(1e-6).update(g, optax.ClipByGlobalNormState())
  np.testing.assert_allclose(torch_like["w"][0], 2e-6 / 3, rtol=1e-5)
  np.testing.assert_allclose(plain["w"][0], 1e-6, rtol=1e-5)


def test_protocol_chains_clip_first_as_torch_and_keep_their_state_structure():
  """The BP and FA chains (clip → coupled L2 → Adam / SGD) step exactly as clip_grad_norm_ then the optimiser."""
  params = {"w": jnp.ones((4,), jnp.float32)}
  grads = {"w": jnp.asarray([30.0, -40.0, 0.0, 0.0], jnp.float32)}  # ‖g‖ = 50: clipping binds
  sgd = optimizers.sgd_momentum_l2(lambda _: 0.1, momentum=0.9, weight_decay=1e-4, clip_norm=1.0)
  updates, state = sgd.update(grads, sgd.init(params), params)
  clipped = _torch_clip_reference({"w": np.asarray(grads["w"])}, 1.0)["w"]
  np.testing.assert_allclose(updates["w"], -0.1 * (clipped + 1e-4 * 1.0), rtol=1e-6)
  assert isinstance(state[0], type(optax.clip_by_global_norm(1.0).init(params)))
  adam = optimizers.adam_l2(lambda _: 1e-3, weight_decay=0.0, clip_norm=1.0)
  a_updates, _ = adam.update(grads, adam.init(params), params)
  m, v = 0.1 * clipped, 0.001 * clipped**2  # Adam's first step with bias correction: m̂ = g, v̂ = g²
  np.testing.assert_allclose(a_updates["w"], -1e-3 * (m / 0.1) / (np.sqrt(v / 0.001) + 1e-8), rtol=1e-5, atol=1e-9)
