"""Predictive coding: inference descends the energy, the local updates are −∂F/∂θ as convolutional correlations,
and in the small-error limit the PC weight update is the backprop gradient (Whittington & Bogacz 2017)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from leut.models import cnn
from leut.rules import predictive_coding as pc

NET = cnn.network((8, 8, 16), 16)


def _hierarchy():
  params, model_state = NET.init(jax.random.key(0))
  rule = pc.predictive_coding(NET)
  gen = rule.init(jax.random.key(1), params).generative
  x = jax.random.normal(jax.random.key(2), (4, 32, 32, 3))
  rs0, frozen, _ = pc.feedforward(NET, params, model_state, x, train=True)
  return params, gen, frozen, rs0, x


def test_inference_lowers_the_energy_monotonically():
  params, gen, frozen, rs0, x = _hierarchy()
  fwd, gens = pc.hierarchy(NET, params, gen, frozen)
  energy_fn = lambda rs: pc.energy(rs, x, forward=fwd, generative=gens)  # noqa: E731
  result = jax.jit(lambda rs: pc.infer(energy_fn, rs, steps=40, optimizer=optax.sgd(0.1), nonneg=True))(rs0)
  f = np.asarray(result.energies)
  assert np.all(np.diff(f) <= 1e-6 * f[0]), f
  assert f[-1] < 0.7 * f[0]  # and by a real margin


def test_local_updates_are_the_energy_gradient_as_convolutional_correlations():
  params, gen, frozen, rs0, x = _hierarchy()
  rs = tuple(r + 0.1 * jax.random.uniform(jax.random.key(i), r.shape) for i, r in enumerate(rs0))  # ε_bu ≠ 0

  def f(kernels, g):
    p = dict(params, **{n: {"kernel": k} for n, k in kernels.items()})
    fwd, gens = pc.hierarchy(NET, p, g, frozen, activation="tanh")
    return pc.energy(rs, x, forward=fwd, generative=gens, bu_weight=0.7, td_weight=1.3)

  kernels = {n: params[n]["kernel"] for n in cnn.CONV_LAYERS}
  want_w, want_g = jax.grad(f, argnums=(0, 1))(kernels, gen)
  got_w, got_g = pc.local_weight_grads(NET, params, gen, frozen, rs, x, bu_weight=0.7, td_weight=1.3, activation="tanh")
  got_w = {n: got_w[n][n]["kernel"] for n in cnn.CONV_LAYERS}
  for n in cnn.CONV_LAYERS:
    assert got_w[n].shape == params[n]["kernel"].shape  # full 3x3 x C_in x C_out, every layer
    np.testing.assert_allclose(got_w[n], want_w[n], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(got_g[n], want_g[n], rtol=1e-4, atol=1e-6)
    assert float(jnp.linalg.norm(got_w[n])) > 0 and float(jnp.linalg.norm(got_g[n])) > 0


def _mlp(key, sizes):
  ks = jax.random.split(key, len(sizes))
  return [jax.random.normal(k, (a, b)) / np.sqrt(a) for k, a, b in zip(ks, sizes[:-1], sizes[1:])]


def _dense_forward(weights):
  # μ_l = φ(r_{l-1}) W_l with φ = tanh except on the input (Whittington & Bogacz 2017, eq. 2.6)
  return [(lambda r, w=w, l=l: (jnp.tanh(r) if l > 0 else r) @ w) for l, w in enumerate(weights)]


def test_small_error_pc_update_aligns_with_backprop_gradient():
  """Whittington & Bogacz (2017): output clamped to the feedforward prediction nudged by β towards the target,
  output precision π small against the hidden ones (hidden activities move little), inference converged:
  −ΔW_l = ∂F/∂W_l ≈ β π ∂L/∂W_l for every layer."""
  weights = _mlp(jax.random.key(0), (6, 12, 10, 4))
  x = jax.random.normal(jax.random.key(1), (8, 6))
  y = jax.random.normal(jax.random.key(2), (8, 4))
  rs_ff = [x]
  for f in _dense_forward(weights):
    rs_ff.append(f(rs_ff[-1]))
  beta, precision = 0.1, 1e-2
  target = rs_ff[-1] - beta * (rs_ff[-1] - y)  # ŷ − β ∂L/∂ŷ for L = ½‖ŷ − y‖²

  def energy_of(ws, hidden):
    return pc.energy(hidden, x, forward=_dense_forward(ws), generative=None, top=target, top_weight=precision)

  infer = jax.jit(lambda h: pc.infer(lambda hh: energy_of(weights, hh), h, steps=500, optimizer=optax.sgd(0.3)))
  result = infer(tuple(rs_ff[1:-1]))
  f = np.asarray(result.energies)
  assert np.all(np.diff(f) <= 1e-6 * f[0])
  pc_grads = jax.grad(energy_of)(weights, result.activities)  # = −ΔW

  def loss(ws):
    out = x
    for f in _dense_forward(ws):
      out = f(out)
    return 0.5 * jnp.sum(jnp.square(out - y)) / x.shape[0]

  bp_grads = jax.grad(loss)(weights)
  for g_pc, g_bp in zip(pc_grads, bp_grads):
    cos = float(jnp.sum(g_pc * g_bp) / (jnp.linalg.norm(g_pc) * jnp.linalg.norm(g_bp)))
    assert cos > 0.99, cos
    np.testing.assert_allclose(
      float(jnp.linalg.norm(g_pc)) / (beta * precision), float(jnp.linalg.norm(g_bp)), rtol=0.05
    )
