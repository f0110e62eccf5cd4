"""Every registered rule honours the `LearningRule` contract: finite, param-shaped directions that are the same
under jit and eager, a seed-vmap that equals separate calls, a working protocol optimiser and a batch-independent
evaluation readout."""

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from leut import rules
from leut.models import cnn, resnet
from leut.rules import base

NET = cnn.network((8, 8, 16), 16)  # the protocol structure, small widths: keeps compile+run short on CPU
N_IMAGES = 4


def _batch(seed=1):
  x = jax.random.normal(jax.random.key(seed), (N_IMAGES, 32, 32, 3))
  return base.Batch(x, jnp.arange(N_IMAGES, dtype=jnp.int32) % 10)


def _setup(name, seed=0, network=NET):
  params, model_state = network.init(jax.random.key(seed))
  rule, tx = rules.make(name, steps_per_epoch=2, epochs=2, network=network)
  return rule, tx, params, model_state, rule.init(jax.random.fold_in(jax.random.key(seed), 7), params)


def _close(a, b, rtol=1e-4, atol=1e-6):
  jax.tree.map(lambda x, y: np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol), a, b)


def test_registry_lists_every_rule_module():
  expected = {
    "backprop",
    "untrained",
    "feedback_alignment",
    "direct_feedback_alignment",
    "predictive_coding",
    "predictive_coding_published",
    "stdp",
    "stdp_published",
  }
  assert expected <= set(rules.available())
  assert "_local" not in rules.available()


@pytest.mark.parametrize("name", rules.available())
def test_update_contract_jit_eager_vmap_and_optimizer(name):
  rule, tx, params, model_state, rule_state = _setup(name)
  batch, key = _batch(), jax.random.key(3)
  jitted = jax.jit(rule.update)
  out = jitted(params, model_state, rule_state, batch, key)

  # finite and shaped like params; BN state keeps its structure; metrics are scalars.
  assert jax.tree.structure(out.grads) == jax.tree.structure(params)
  jax.tree.map(
    lambda g, p: (g.shape == p.shape) or pytest.fail(f"{name}: grad shape {g.shape} != {p.shape}"), out.grads, params
  )
  assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(out.grads))
  assert jax.tree.structure(out.model_state) == jax.tree.structure(model_state)
  assert {"loss", "accuracy"} <= set(out.metrics) and all(jnp.shape(v) == () for v in out.metrics.values())

  # eager equals jit.
  eager = rule.update(params, model_state, rule_state, batch, key)
  _close(eager.grads, out.grads)
  _close(eager.model_state, out.model_state)
  _close(eager.rule_state, out.rule_state)

  # vmap over 3 seeds equals 3 single calls.
  singles = [_setup(name, seed) for seed in range(3)]
  keys = jnp.stack([jax.random.key_data(jax.random.key(10 + s)) for s in range(3)])
  stack = lambda i: jax.tree.map(lambda *xs: jnp.stack(xs), *[s[i] for s in singles])  # noqa: E731
  vmapped = jax.jit(jax.vmap(lambda p, m, r, k: rule.update(p, m, r, batch, jax.random.wrap_key_data(k))))(
    stack(2), stack(3), stack(4), keys
  )
  for s, (_, _, p, m, r) in enumerate(singles):
    one = jitted(p, m, r, batch, jax.random.wrap_key_data(keys[s]))
    _close(jax.tree.map(lambda x: x[s], vmapped.grads), one.grads)
    _close(jax.tree.map(lambda x: x[s], vmapped.rule_state), one.rule_state)

  # the protocol optimiser steps on these directions.
  opt_state = tx.init(params)
  updates, opt_state = jax.jit(tx.update)(out.grads, opt_state, params)
  new_params = optax.apply_updates(params, updates)
  assert all(bool(jnp.all(jnp.isfinite(p))) for p in jax.tree.leaves(new_params))
  moved = float(optax.tree.norm(updates))
  assert (moved == 0.0) if not rules.is_trained(name) else (moved > 0.0)

  _check_evaluate_is_batch_independent(rule, params, out)


def _check_evaluate_is_batch_independent(rule, params, out, layers=cnn.FEATURE_LAYERS):
  """Evaluation features of a stimulus do not depend on its batch companions (running BN statistics only)."""
  evaluate = jax.jit(rule.represent)
  x = _batch(5).images
  strangers = 4.0 + 3.0 * jax.random.normal(jax.random.key(9), x.shape)
  logits, feats = evaluate(params, out.model_state, out.rule_state, x)
  logits_mix, feats_mix = evaluate(params, out.model_state, out.rule_state, jnp.concatenate([x[:1], strangers[1:]]))
  assert logits.shape == (N_IMAGES, 10) and set(feats) == set(layers)
  for layer in layers:
    np.testing.assert_allclose(feats[layer][0], feats_mix[layer][0], rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(logits[0], logits_mix[0], rtol=1e-5, atol=1e-5)


OTHER_ARCHITECTURES = {  # tiny: the protocol CNN has the full contract above; here each rule meets each structure
  "cnn1": cnn.network((4,), 8),
  "cnn5": cnn.network((4, 4, 8, 8, 8), 8),
  "resnet": resnet.network((4, 8), 1, 8),
}
PROTOCOL_ONLY = {"predictive_coding_published", "stdp_published"}


@pytest.mark.parametrize("arch", OTHER_ARCHITECTURES)
@pytest.mark.parametrize("name", rules.available())
def test_every_rule_trains_every_architecture_or_refuses_it_clearly(name, arch):
  """On a 1-block and a 5-block CNN and a residual network: a finite, param-shaped direction for every parameter,
  every BatchNorm's statistics updated, the optimiser moves a trained rule, and the readout has every layer and
  is per stimulus. The published replications refuse anything but the 3-block protocol CNN."""
  network = OTHER_ARCHITECTURES[arch]
  if name in PROTOCOL_ONLY:
    with pytest.raises(ValueError, match="3-block protocol CNN"):
      _setup(name, network=network)
    return
  rule, tx, params, model_state, rule_state = _setup(name, network=network)
  out = jax.jit(rule.update)(params, model_state, rule_state, _batch(), jax.random.key(3))
  assert jax.tree.structure(out.grads) == jax.tree.structure(params)
  for (path, g), p in zip(jax.tree_util.tree_leaves_with_path(out.grads), jax.tree.leaves(params)):
    assert g.shape == p.shape and bool(jnp.all(jnp.isfinite(g))), jax.tree_util.keystr(path)
  if rules.is_trained(name):
    for bn in model_state:
      assert not np.allclose(out.model_state[bn]["mean"], model_state[bn]["mean"]), bn
    updates, _ = jax.jit(tx.update)(out.grads, tx.init(params), params)
    assert float(optax.tree.norm(updates)) > 0.0
  _check_evaluate_is_batch_independent(rule, params, out, network.feature_layers)


RECORDED = Path(__file__).parents[1] / "fixtures" / "rule_steps.npz"


@pytest.mark.parametrize("name", rules.available())
def test_rule_step_matches_the_recorded_fixture(name):
  """What each rule computes on a fixed batch equals `tests/fixtures/rule_steps.npz` (recorded before refactors)."""
  from tests.fixtures.record_rule_steps import one_step

  with np.load(RECORDED) as recorded:
    expected = {k.split("/", 1)[1]: recorded[k] for k in recorded.files if k.split("/", 1)[0] == name}
  assert expected, f"no recorded step for {name!r}: re-record with tests/fixtures/record_rule_steps.py"
  got = one_step(name)
  assert set(got) == set(expected)
  for key, value in expected.items():
    np.testing.assert_allclose(got[key], value, rtol=2e-5, atol=2e-6, err_msg=f"{name} {key}")
