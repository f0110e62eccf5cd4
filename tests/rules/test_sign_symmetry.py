"""Sign symmetry sends errors back through sign(W)·M: where |W| already equals M it is exactly backprop."""

import jax
import jax.numpy as jnp
import numpy as np

from leut.models import cnn
from leut.models.network import kernel_at
from leut.rules import backprop, base, sign_symmetry

NET = cnn.network((4, 8, 8), 16)
_JITTED = {}  # one compilation per rule object


def _setup():
  params, model_state = NET.init(jax.random.key(0))
  batch = base.Batch(jax.random.normal(jax.random.key(1), (4, 32, 32, 3)), jnp.arange(4, dtype=jnp.int32))
  return params, model_state, batch


def _with_kernels(params, fn):
  """params with every linear layer's kernel replaced by fn(kernel)."""
  out = jax.tree.map(lambda x: x, params)
  for lin in NET.linear_layers:
    node = out
    for key in lin.path[:-1]:
      node = node[key]
    node[lin.path[-1]] = fn(kernel_at(params, lin))
  return out


def _grads(rule, params, model_state, batch, rule_state=None):
  state = rule.init(jax.random.key(5), params) if rule_state is None else rule_state
  return _JITTED.setdefault(rule, jax.jit(rule.update))(params, model_state, state, batch, jax.random.key(3))


def _assert_close(a, b):
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=2e-4, atol=1e-7), a, b)


def test_uniform_sign_feedback_is_backprop_when_every_weight_has_magnitude_one_over_sqrt_fan_in():
  params, model_state, batch = _setup()
  bp = backprop.backprop(NET, dropout_rate=0.0)
  ss = sign_symmetry.sign_symmetry(NET, dropout_rate=0.0)
  binary = _with_kernels(params, lambda k: jnp.sign(k) / jnp.sqrt(float(sign_symmetry.fan_in(k.shape))))
  _assert_close(_grads(ss, binary, model_state, batch).grads, _grads(bp, binary, model_state, batch).grads)
  # with the initial (non-binary) weights conv1's update differs from backprop's (it gets sign-routed errors)
  ss_conv1 = _grads(ss, params, model_state, batch).grads["conv1"]["kernel"]
  bp_conv1 = _grads(bp, params, model_state, batch).grads["conv1"]["kernel"]
  assert float(jnp.abs(ss_conv1 - bp_conv1).max()) > 1e-3 * float(jnp.abs(bp_conv1).max())


def test_random_magnitudes_are_fixed_positive_and_give_backprop_when_they_equal_abs_w():
  params, model_state, batch = _setup()
  ss = sign_symmetry.sign_symmetry(NET, magnitude="random", dropout_rate=0.0)
  state = ss.init(jax.random.key(5), params)
  assert set(state.magnitudes) == {lin.name for lin in NET.linear_layers}
  for lin in NET.linear_layers:
    m = state.magnitudes[lin.name]
    assert m.shape == kernel_at(params, lin).shape and float(m.min()) >= 0.0
    assert float(m.max()) <= 1.0 / np.sqrt(sign_symmetry.fan_in(m.shape)) + 1e-7
  out = _grads(ss, params, model_state, batch, state)
  jax.tree.map(np.testing.assert_array_equal, out.rule_state, state)  # never updated
  abs_w = sign_symmetry.SignSymmetryState({lin.name: jnp.abs(kernel_at(params, lin)) for lin in NET.linear_layers})
  bp = backprop.backprop(NET, dropout_rate=0.0)
  _assert_close(_grads(ss, params, model_state, batch, abs_w).grads, _grads(bp, params, model_state, batch).grads)
