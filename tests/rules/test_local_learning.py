"""The local rules really learn: after a few dozen steps on random images, conv1 (and every conv) of `stdp` and
`predictive_coding` has moved measurably while staying finite and bounded.

Threshold: relative displacement ‖W_30 − W_0‖/‖W_0‖ > 3e-3 for every conv layer after 30 steps (the published
PC moved conv1 by 2.1% over 2,480 steps, the published STDP by < 1e-3 cumulatively, PROTOCOL §2.5–2.6), and
filter norms within 10% of their initial values (both rules bound them: STDP explicitly, PC through its energy).
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from leut import rules
from leut.models import cnn
from leut.rules import base

NET = cnn.network((8, 8, 16), 16)
STEPS = 30
MIN_DISPLACEMENT = 3e-3


def _run(name, steps=STEPS):
  params0, model_state = NET.init(jax.random.key(0))
  rule, tx = rules.make(name, steps_per_epoch=10, epochs=3, network=NET)

  def step(carry, i):
    params, model_state, rule_state, opt_state = carry
    k = jax.random.fold_in(jax.random.key(1), i)
    batch = base.Batch(jax.random.normal(k, (8, 32, 32, 3)), jax.random.randint(k, (8,), 0, 10))
    out = rule.update(params, model_state, rule_state, batch, jax.random.fold_in(k, 1))
    updates, opt_state = tx.update(out.grads, opt_state, params)
    return (optax.apply_updates(params, updates), out.model_state, out.rule_state, opt_state), out.metrics

  rule_state0 = rule.init(jax.random.key(2), params0)
  carry = (params0, model_state, rule_state0, tx.init(params0))
  (params, _, rule_state, _), metrics = jax.jit(lambda c: jax.lax.scan(step, c, jnp.arange(steps)))(carry)
  return params0, params, rule_state0, rule_state, metrics


@pytest.mark.parametrize("name", ["stdp", "predictive_coding"])
def test_local_rules_move_every_conv_measurably_and_stay_bounded(name):
  params0, params, rule_state0, rule_state, metrics = _run(name)
  for layer in cnn.CONV_LAYERS:
    w0, w = params0[layer]["kernel"], params[layer]["kernel"]
    assert bool(jnp.all(jnp.isfinite(w)))
    displacement = float(jnp.linalg.norm(w - w0) / jnp.linalg.norm(w0))
    assert displacement > MIN_DISPLACEMENT, (layer, displacement)
    norms0, norms = (jnp.sqrt(jnp.sum(jnp.square(k), axis=(0, 1, 2))) for k in (w0, w))
    np.testing.assert_allclose(norms, norms0, rtol=0.1)
    delta = np.asarray(w - w0)  # a full 3x3 update, not one value broadcast over the kernel positions
    assert np.abs(delta - delta[1:2, 1:2]).max() > 1e-3 * np.abs(delta).max()
  if name == "predictive_coding":  # learning G and W lowers the energy the feedforward guess starts from
    e = np.asarray(metrics["energy_initial"])
    assert e[-5:].mean() < e[:5].mean()
    for layer in cnn.CONV_LAYERS:  # the generative weights learn too
      g0, g = rule_state0.generative[layer], rule_state.generative[layer]
      assert bool(jnp.all(jnp.isfinite(g))) and float(jnp.linalg.norm(g - g0) / jnp.linalg.norm(g0)) > MIN_DISPLACEMENT
