"""Feedback alignment and direct feedback alignment against backprop and against hand-derived updates."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from leut.models import cnn, layers, resnet
from leut.rules import _local, backprop, base
from leut.rules import direct_feedback_alignment as dfa_mod
from leut.rules import feedback_alignment as fa_mod

NET = cnn.network((8, 8, 16), 16)


def _setup():
  params, model_state = NET.init(jax.random.key(0))
  batch = base.Batch(jax.random.normal(jax.random.key(1), (4, 32, 32, 3)), jnp.array([0, 3, 3, 9], jnp.int32))
  return params, model_state, batch


def _close(a, b, rtol=1e-4, atol=1e-6):
  jax.tree.map(lambda x, y: np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol), a, b)


def test_patch_correlation_and_conv_transpose_are_the_conv_adjoints():
  """Against autodiff of the plain-JAX im2col convolution (the local correlations are conv3x3's own VJP)."""
  x = jax.random.normal(jax.random.key(0), (2, 6, 6, 3))
  k = jax.random.normal(jax.random.key(1), (3, 3, 3, 5))
  d = jax.random.normal(jax.random.key(2), (2, 6, 6, 5))
  _, vjp = jax.vjp(lambda x_, k_: layers.conv3x3_im2col(x_, k_), x, k)
  gx, gk = vjp(d)
  np.testing.assert_allclose(_local.patch_correlation(x, d), gk, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(_local.conv_transpose(d, k), gx, rtol=1e-5, atol=1e-5)


ARCHITECTURES = {
  "protocol": NET,
  "cnn1": cnn.network((4,), 8),
  "cnn5": cnn.network((4, 4, 8, 8, 8), 8),
  "resnet": resnet.network((4, 8), 1, 8),
}


@pytest.mark.parametrize("arch", ARCHITECTURES)
@pytest.mark.parametrize("scope", ["conv", "all"])
def test_fa_with_feedback_equal_to_the_forward_weights_is_backprop(scope, arch):
  """On every architecture (fused CNN blocks, unfused residual units and 1x1 projections)."""
  net = ARCHITECTURES[arch]
  params, model_state = net.init(jax.random.key(0))
  batch = _setup()[2]
  key = jax.random.key(3)  # same dropout mask for both rules
  fa = fa_mod.feedback_alignment(net, layers=scope)
  state = fa.init(jax.random.key(4), params)
  assert set(state.feedback) == {lin.name for lin in net.linear_layers if scope == "all" or lin.kind == "conv"}
  state = fa_mod.FeedbackAlignmentState({name: params[name]["kernel"] for name in state.feedback})
  got = jax.jit(fa.update)(params, model_state, state, batch, key)
  want = jax.jit(backprop.backprop(net).update)(params, model_state, base.EmptyState(), batch, key)
  _close(got.grads, want.grads)
  _close(got.model_state, want.model_state)


def test_fa_with_random_feedback_is_exact_above_and_approximate_below():
  params, model_state, batch = _setup()
  key = jax.random.key(3)
  fa = fa_mod.feedback_alignment(NET, layers="conv")
  got = fa.update(params, model_state, fa.init(jax.random.key(4), params), batch, key).grads
  want = backprop.backprop(NET).update(params, model_state, base.EmptyState(), batch, key).grads
  for exact in ("fc1", "fc2", "conv3", "bn3"):  # fc exact; conv3/bn3 see the true error at conv3's output
    _close(got[exact], want[exact])
  assert not np.allclose(got["conv1"]["kernel"], want["conv1"]["kernel"], rtol=1e-2)


def _linear_problem(n=5, i=4, h=3, k=2):
  ks = jax.random.split(jax.random.key(0), 6)
  return (
    jax.random.normal(ks[0], (n, i)),
    jax.random.normal(ks[1], (n, k)),
    jax.random.normal(ks[2], (i, h)),
    jax.random.normal(ks[3], (h, k)),
    jax.random.normal(ks[4], (h, k)),
    jax.random.normal(ks[5], (k, h)),
  )


def test_fa_two_layer_linear_network_matches_hand_derivation():
  x, t, w1, w2, b2, _ = _linear_problem()
  n = x.shape[0]

  def loss(w1_, w2_):
    y = fa_mod.fa_dense(fa_mod.fa_dense(x, w1_, jnp.zeros_like(w1_)), w2_, b2)
    return 0.5 * jnp.sum(jnp.square(y - t)) / n

  g1, g2 = jax.grad(loss, argnums=(0, 1))(w1, w2)
  h = x @ w1
  e = (h @ w2 - t) / n
  np.testing.assert_allclose(g2, h.T @ e, rtol=1e-5, atol=1e-6)  # top layer: true gradient
  np.testing.assert_allclose(g1, x.T @ (e @ b2.T), rtol=1e-5, atol=1e-6)  # hidden: error through B2, not W2
  assert not np.allclose(g1, x.T @ (e @ w2.T), rtol=1e-2)


def test_dfa_two_layer_linear_network_matches_hand_derivation():
  x, t, w1, w2, _, b1 = _linear_problem()
  n = x.shape[0]

  def surrogate(w1_, w2_):
    h = x @ w1_
    y = jax.lax.stop_gradient(h) @ w2_
    e = (y - t) / n
    return 0.5 * jnp.sum(jnp.square(y - t)) / n + dfa_mod.dfa_surrogate([h], e, [b1])

  g1, g2 = jax.grad(surrogate, argnums=(0, 1))(w1, w2)
  h = x @ w1
  e = (h @ w2 - t) / n
  np.testing.assert_allclose(g2, h.T @ e, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(g1, x.T @ (e @ b1), rtol=1e-5, atol=1e-6)  # δ_1 = e B1, straight from the output


def test_dfa_conv_error_is_the_adjoint_of_global_average_pooling():
  e = jax.random.normal(jax.random.key(0), (3, 10))
  b = jax.random.normal(jax.random.key(1), (10, 6))
  h = jax.random.normal(jax.random.key(2), (3, 4, 4, 6))
  delta = dfa_mod.project_error(e, b, h.shape)
  assert delta.shape == h.shape
  np.testing.assert_allclose(delta, jnp.broadcast_to(delta[:, :1, :1, :], h.shape))  # constant over space
  want = jax.grad(lambda h_: jnp.sum(e * (h_.mean(axis=(1, 2)) @ b.T)))(h)
  np.testing.assert_allclose(delta, want, rtol=1e-5, atol=1e-7)


def test_dfa_rule_is_exact_at_the_top_and_local_below():
  params, model_state, batch = _setup()
  rule = dfa_mod.direct_feedback_alignment(NET)
  state = rule.init(jax.random.key(4), params)
  got = rule.update(params, model_state, state, batch, jax.random.key(3)).grads
  want = (
    backprop.backprop(NET, dropout_rate=0.0)
    .update(params, model_state, base.EmptyState(), batch, jax.random.key(3))
    .grads
  )
  _close(got["fc2"], want["fc2"])
  # conv3: the projected output error pulled back through conv3's own block only (BN, ReLU, pool).
  logits, acts, _ = NET.apply(params, model_state, batch.images, train=True)
  e = (jax.nn.softmax(logits) - jax.nn.one_hot(batch.labels, 10)) / batch.images.shape[0]

  def block(k):
    p = dict(params, conv3={"kernel": k})
    return NET.blocks[2].apply(p, model_state, acts["conv2"], train=True).out

  out, vjp = jax.vjp(block, params["conv3"]["kernel"])
  (want_conv3,) = vjp(dfa_mod.project_error(e, state.feedback["conv3"], out.shape))
  np.testing.assert_allclose(got["conv3"]["kernel"], want_conv3, rtol=1e-4, atol=1e-7)
