"""A learning rule is an optax transformation: it chains with optax optimisers, leut's trainer runs the chain, and the
result equals the rule followed by the optimiser written out by hand."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from leut import optimizers, rules
from leut.models import cnn
from leut.rules import backprop, base, feedback_alignment
from leut.rules import predictive_coding as pc
from leut.rules import stdp as stdp_rule
from leut.train import loop
from tests.helpers import random_train_data

NET = cnn.network((4, 8, 8), 16)
SMALL = cnn.network((4,), 8)  # one block: the trainer tests compile two trainers


def _close(a, b, rtol=1e-5, atol=1e-7):
  jax.tree.map(lambda x, y: np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol), a, b)


def _train(rule, tx, steps=2):
  trainer = loop.make_trainer(rule, tx, random_train_data(), n_subset=32, batch_size=16, network=SMALL)
  keys = loop.seed_keys(0, 2)
  return trainer.run_segment(trainer.init_all(keys), keys, steps)


def test_a_rule_chained_with_optax_trains_in_the_loop_and_equals_the_builtin_path():
  """`optax.chain(rule, clip, L2, momentum, lr)` given to the trainer = the rule with its protocol optimiser (the
  same four pieces, `rules.make`): same weights, BatchNorm statistics, feedback matrices and metrics after 2 steps."""
  rule, protocol_tx = rules.make("feedback_alignment", steps_per_epoch=2, epochs=2, network=SMALL)
  schedule = optimizers.epoch_cosine(5e-4, 2, 2)
  chained = optax.chain(
    rules.as_transform(rule, SMALL),
    optimizers.clip_grad_norm_torch(1.0),
    optax.add_decayed_weights(1e-4),
    optax.trace(decay=0.9),
    optax.scale_by_learning_rate(schedule),
  )
  builtin, builtin_metrics = _train(rule, protocol_tx)
  composed, composed_metrics = _train(rule, chained)
  _close(composed.params, builtin.params)
  _close(composed.model_state, builtin.model_state)
  _close(composed.rule_state, builtin.rule_state)
  for name in ("loss", "accuracy", "diverged"):
    np.testing.assert_allclose(composed_metrics[name], builtin_metrics[name], rtol=1e-5)
  initial, _ = loop.network_init(SMALL, {})(loop.seed_keys(0, 2))
  assert float(jnp.abs(composed.params["conv1"]["kernel"] - initial["conv1"]["kernel"]).max()) > 0.0


def test_the_issue_chain_equals_the_rule_then_clip_then_adam_by_hand():
  """`optax.chain(rule, optax.clip_by_global_norm(1.0), optax.adam(1e-3))` in a user's own jitted loop: each step
  equals rule.update → clip → Adam computed separately, and the slot carries the rule's outputs."""
  rule = feedback_alignment.feedback_alignment(SMALL, layers="all")
  key = jax.random.key(4)
  rule_tx = rules.transform("feedback_alignment", {"layers": "all"}, network=SMALL, key=key)
  tx = optax.chain(rule_tx, optax.clip_by_global_norm(1.0), optax.adam(1e-3))
  params, model_state = SMALL.init(jax.random.key(0))
  batch = base.Batch(jax.random.normal(jax.random.key(1), (4, 32, 32, 3)), jnp.arange(4, dtype=jnp.int32))

  state = tx.init(params)
  ref_rule_state, ref_model_state = rule.init(key, params), model_state
  clip_adam = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(1e-3))
  ref_params, ref_opt = params, clip_adam.init(params)
  ref_update = jax.jit(rule.update)
  update = jax.jit(lambda p, s, m, k: tx.update(None, s, p, batch=batch, key=k, model_state=m))
  for step in range(2):
    step_key = jax.random.key(10 + step)
    updates, state = update(params, state, model_state, step_key)
    params, out = optax.apply_updates(params, updates), rules.rule_output(state)
    model_state = out.model_state

    ref = ref_update(ref_params, ref_model_state, ref_rule_state, batch, step_key)
    ref_updates, ref_opt = clip_adam.update(ref.grads, ref_opt, ref_params)
    ref_params, ref_model_state, ref_rule_state = (
      optax.apply_updates(ref_params, ref_updates),
      ref.model_state,
      ref.rule_state,
    )
    _close(params, ref_params)
    _close(out.model_state, ref.model_state)
    _close(out.rule_state, ref.rule_state)
    np.testing.assert_allclose(out.metrics["loss"], ref.metrics["loss"], rtol=1e-6)


def test_a_rule_transform_without_a_key_says_how_to_give_one():
  rule = backprop.backprop(NET)
  params, _ = NET.init(jax.random.key(0))
  with pytest.raises(ValueError, match="init_key"):
    rules.as_transform(rule, NET).init(params)
  with rules.init_key(jax.random.key(1)):
    assert isinstance(rules.as_transform(rule, NET).init(params), rules.RuleTransformState)


def _pc_step(generative_optimizer):
  rule = pc.predictive_coding(NET, inference_steps=2, generative_optimizer=generative_optimizer)
  params, model_state = NET.init(jax.random.key(0))
  state = rule.init(jax.random.key(1), params)
  batch = base.Batch(jax.random.normal(jax.random.key(2), (4, 32, 32, 3)), jnp.arange(4, dtype=jnp.int32))
  return state.generative, rule.update(params, model_state, state, batch, jax.random.key(3)).rule_state.generative


def test_predictive_codings_generative_step_is_a_replaceable_optax_transform():
  """ΔG is linear in the SGD step: optax.sgd(3·lr_g) moves G three times as far as the default; set_to_zero freezes
  G; the default is optax.sgd(lr_g) (here 1e-3)."""
  g0, default = _pc_step(None)
  _, same = _pc_step(optax.sgd(1e-3))
  _, tripled = _pc_step(optax.sgd(3e-3))
  _, frozen = _pc_step(optax.set_to_zero())
  _close(same, default)
  for name in g0:
    step = default[name] - g0[name]
    np.testing.assert_allclose(tripled[name] - g0[name], 3 * step, atol=1e-3 * float(jnp.abs(step).max()))
  _close(frozen, g0, rtol=0, atol=0)
  assert max(float(jnp.abs(a - b).max()) for a, b in zip(jax.tree.leaves(default), jax.tree.leaves(g0))) > 0


def test_stdps_weight_bound_is_a_replaceable_optax_transform():
  """With `bound=optax.identity()` the conv direction is minus the centred correlation: it sums to zero over the
  output channels (heterosynaptic competition), and `optax.scale(2)` doubles it; the default bound does not."""
  params, model_state = NET.init(jax.random.key(0))
  batch = base.Batch(jax.random.normal(jax.random.key(2), (4, 32, 32, 3)), jnp.arange(4, dtype=jnp.int32))

  def conv_grads(bound):
    rule = stdp_rule.stdp(NET, bound=bound)
    out = rule.update(params, model_state, rule.init(jax.random.key(1), params), batch, jax.random.key(3))
    return {c: out.grads[c]["kernel"] for c in ("conv1", "conv2", "conv3")}

  raw, doubled, bounded = conv_grads(optax.identity()), conv_grads(optax.scale(2.0)), conv_grads(None)
  for name, g in raw.items():
    scale = float(jnp.abs(g).max())
    assert scale > 0
    np.testing.assert_allclose(g.sum(-1), 0.0, atol=1e-5 * scale)
    np.testing.assert_allclose(doubled[name], 2 * g, rtol=1e-6, atol=1e-9)
    assert float(jnp.abs(bounded[name].sum(-1)).max()) > 1e-3 * float(jnp.abs(bounded[name]).max())
