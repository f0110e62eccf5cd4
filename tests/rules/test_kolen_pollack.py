"""Kolen–Pollack: W and B take the same step plus weight decay, so W − B follows a closed-form linear recurrence
whatever the errors, and B aligns with W."""

import jax
import numpy as np
import optax

from leut import rules
from leut.models import cnn
from leut.models.network import kernel_at
from leut.rules import base

NET = cnn.network((4, 8, 8), 16)


def _run(hparams, steps):
  """W and B of every KP layer after each of `steps` steps (rule + its protocol optimiser) on random batches."""
  rule, tx = rules.make("kolen_pollack", hparams, steps_per_epoch=4, epochs=2, network=NET)
  params, model_state = NET.init(jax.random.key(0))
  rule_state, opt_state = rule.init(jax.random.key(1), params), tx.init(params)

  @jax.jit
  def step(params, model_state, rule_state, opt_state, key):
    x_key, y_key, rule_key = jax.random.split(key, 3)
    batch = base.Batch(jax.random.normal(x_key, (8, 32, 32, 3)), jax.random.randint(y_key, (8,), 0, 10))
    out = rule.update(params, model_state, rule_state, batch, rule_key)
    updates, opt_state = tx.update(out.grads, opt_state, params)
    return optax.apply_updates(params, updates), out.model_state, out.rule_state, opt_state

  history = [(params, rule_state)]
  for t in range(steps):
    params, model_state, rule_state, opt_state = step(
      params, model_state, rule_state, opt_state, jax.random.key(10 + t)
    )
    history.append((params, rule_state))
  return [
    {
      lin.name: (np.asarray(kernel_at(p, lin), np.float64), np.asarray(s.feedback[lin.name], np.float64))
      for lin in NET.linear_layers
    }
    for p, s in history
  ]


def test_w_minus_b_follows_the_momentum_sgd_recurrence_of_the_weight_decay_alone():
  """D_t = W_t − B_t: m_t = μ m_{t−1} + λ D_{t−1}, D_t = D_{t−1} − η m_t (float64), the errors cancelling exactly."""
  lr, mu, wd = 0.05, 0.9, 0.2
  history = _run({"learning_rate": lr, "momentum": mu, "weight_decay": wd}, steps=4)
  for name in history[0]:
    d = history[0][name][0] - history[0][name][1]
    m = np.zeros_like(d)
    for t in range(1, len(history)):
      m = mu * m + wd * d
      d = d - lr * m
      w, b = history[t][name]
      np.testing.assert_allclose(w - b, d, rtol=1e-4, atol=2e-6, err_msg=f"{name} step {t}")
    assert not np.allclose(history[-1][name][0], history[0][name][0])  # W moved: the errors did not vanish


def _cosine(a, b):
  return float(np.sum(a * b) / np.sqrt(np.sum(a * a) * np.sum(b * b)))


def test_feedback_aligns_with_the_forward_weights():
  history = _run({"learning_rate": 0.05, "weight_decay": 0.5}, steps=12)
  for name in history[0]:
    before, after = _cosine(*history[0][name]), _cosine(*history[-1][name])
    assert abs(before) < 0.3 and after > before + 0.3, (name, before, after)
