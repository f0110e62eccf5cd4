"""Many seeds, one program: a training run is a pure function of its seed key, vmapped over seeds, scanned over steps.

    init_all(seed_keys_S)            -> TrainState with a leading seed axis on every leaf
    run_segment(state, seed_keys_S, n) -> (state after n more steps, per-seed mean metrics + `diverged` flag)

Keys: each seed key is folded with fixed tags into init / data-subset / shuffle / step streams, and the step stream
with the step counter (`fold_in(key, step)`), so a run resumed from a checkpoint draws exactly the batches, crops and
dropout masks it would have drawn uninterrupted. The initialisation key does not depend on the rule, so every rule
with the same initialisation options (`leut.models.init_options`) starts from the same weights for a given seed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from leut.models.network import Network
from leut.rules import optax_rule
from leut.rules.base import LearningRule
from leut.train import batches, sharding
from leut.xla_cpu import network_jit, run_once_jit

TAG_INIT, TAG_SUBSET, TAG_SHUFFLE, TAG_STEP, TAG_RULE = range(5)


class TrainState(NamedTuple):
  params: Any
  model_state: Any
  opt_state: Any
  rule_state: Any
  subset: jax.Array  # indices of this seed's training images
  step: jax.Array  # int32 scalar


class Trainer(NamedTuple):
  init_all: Callable  # (seed_keys_S) -> TrainState (seed-stacked)
  run_segment: Callable  # (state, seed_keys_S, n_steps) -> (state, metrics)
  abstract_state: Callable  # (n_seeds) -> TrainState of ShapeDtypeStructs
  network: Network | None = None  # the network the rule trains


def diverged(loss_T: jax.Array, state: TrainState) -> jax.Array:
  """True when a step of the segment had a non-finite loss or the state it ends with holds a NaN/inf (per seed).

  Checked inside the jitted segment (one reduction over the state per segment), so a diverged seed is flagged in
  `metrics.jsonl` while the other seeds, independent under the seed vmap, train on.
  """
  leaves = jax.tree.leaves((state.params, state.model_state, state.opt_state, state.rule_state))
  finite = [jnp.all(jnp.isfinite(x)) for x in leaves if jnp.issubdtype(x.dtype, jnp.inexact)]
  return ~(jnp.all(jnp.isfinite(loss_T)) & jnp.all(jnp.stack(finite)))


def seed_keys(seed: int, n_seeds: int) -> jax.Array:
  """One key per seed, all derived from the config's single integer seed."""
  return jax.random.split(jax.random.key(seed), n_seeds)


_NETWORK_INIT = {}


def network_init(network: Network, init_options: dict):
  """`run_once_jit(vmap(seed key -> network.init(fold_in(key, TAG_INIT), **init_options)))`, one per network and
  options: the rules of a run share it, so its compilation (every random draw is a separate threefry program) is
  paid once, not once per rule."""
  cache_key = (network, tuple(sorted(init_options.items())))
  if cache_key not in _NETWORK_INIT:
    _NETWORK_INIT[cache_key] = run_once_jit(
      jax.vmap(lambda key: network.init(jax.random.fold_in(key, TAG_INIT), **init_options))
    )
  return _NETWORK_INIT[cache_key]


class RuleChain(NamedTuple):
  """The optax chain a trainer runs, and how its state maps to `TrainState.opt_state` (which keeps the rule's slot
  out: the rule's state and the model state live in `TrainState.rule_state` / `model_state`)."""

  tx: optax.GradientTransformationExtraArgs
  full: Callable  # (stored opt_state, rule slot) -> the chain's state
  stored: Callable  # the chain's state -> what `TrainState.opt_state` keeps


def rule_chain(rule: LearningRule, tx: optax.GradientTransformation, network: Network, init_options: dict) -> RuleChain:
  """`tx` as it is when it already holds a rule transform (`leut.rules.as_transform`, first in an optax chain);
  otherwise `optax.chain(as_transform(rule, network), tx)`, whose `TrainState.opt_state` is `tx`'s state alone (the
  checkpoint layout of a protocol optimiser)."""
  params_shape, _ = jax.eval_shape(lambda k: network.init(k, **init_options), jax.random.key(0))
  with optax_rule.init_key(jax.random.key(0)):
    holds_rule = bool(optax_rule.rule_slots(jax.eval_shape(tx.init, params_shape)))
  if holds_rule:
    return RuleChain(
      tx, optax_rule.replace_rule_slot, lambda full: optax_rule.replace_rule_slot(full, optax_rule.EMPTY_SLOT)
    )
  chain = optax.chain(optax_rule.as_transform(rule, network, metrics=None), tx)
  return RuleChain(chain, lambda stored, slot: (slot, stored), lambda full: full[1])


def make_trainer(
  rule: LearningRule,
  tx: optax.GradientTransformation,
  data: batches.TrainData,
  *,
  n_subset: int,
  batch_size: int,
  network: Network | None = None,
  init_options: dict | None = None,
  augment: bool = True,
) -> Trainer:
  """Build the jitted, seed-vmapped init and segment functions for one rule on `network` (the network the rule
  was built for; default: the protocol CNN), initialised with `network.init(key, **init_options)`.

  `tx` is the optimiser that follows the rule (a protocol optimiser), or an optax chain that holds the rule itself
  (`optax.chain(leut.rules.as_transform(rule, network), optax.adam(1e-3))`); each step runs the chain
  (`rule_chain`)."""
  if network is None:
    from leut.models import cnn

    network = cnn.network()
  init_options = dict(init_options or {})
  n_total = data.images.shape[0]
  if n_subset > n_total:
    raise ValueError(f"data.train_subset={n_subset} exceeds the {n_total} training images available")
  steps_per_epoch = n_subset // batch_size
  if steps_per_epoch < 1:
    raise ValueError(f"data.train_subset={n_subset} is smaller than one batch of {batch_size}")

  init_networks = network_init(network, init_options)
  chain = rule_chain(rule, tx, network, init_options)

  def init_rest(key, params, model_state):
    with optax_rule.init_key(jax.random.fold_in(key, TAG_RULE)):
      full_state = chain.tx.init(params)
    return TrainState(
      params=params,
      model_state=model_state,
      opt_state=chain.stored(full_state),
      rule_state=optax_rule.rule_output(full_state).rule_state,
      subset=batches.subset_indices(jax.random.fold_in(key, TAG_SUBSET), n_total, n_subset),
      step=jnp.zeros((), jnp.int32),
    )

  init_rest_all = run_once_jit(jax.vmap(init_rest))

  def init_all(seed_keys_S):
    return init_rest_all(seed_keys_S, *init_networks(seed_keys_S))

  def step_one(state: TrainState, key, orders_ExN, first_epoch):
    step_key = jax.random.fold_in(jax.random.fold_in(key, TAG_STEP), state.step)
    aug_key, rule_key = jax.random.split(step_key)
    order_N = orders_ExN[state.step // steps_per_epoch - first_epoch]
    batch = batches.batch_from_order(
      data, order_N, aug_key, state.step % steps_per_epoch, batch_size=batch_size, augment_images=augment
    )
    slot = optax_rule.RuleTransformState(state.rule_state, state.model_state, {})
    updates, full_state = chain.tx.update(
      None, chain.full(state.opt_state, slot), state.params, batch=batch, key=rule_key, model_state=state.model_state
    )
    out = optax_rule.rule_output(full_state)
    params = optax.apply_updates(state.params, updates)
    new = TrainState(params, out.model_state, chain.stored(full_state), out.rule_state, state.subset, state.step + 1)
    return new, out.metrics

  def segment_one(state, key, n_steps):
    # Each epoch the segment touches is shuffled once, here, not in every step: a permutation of an 8,000-image
    # subset is two sorts, a few percent of a backprop step if done every step. Same batches as `batch_at`.
    n_epochs = max(n_steps - 1, 0) // steps_per_epoch + 2  # at least the epochs n_steps consecutive steps touch
    first_epoch = state.step // steps_per_epoch
    shuffle_key = jax.random.fold_in(key, TAG_SHUFFLE)
    orders_ExN = jax.lax.map(
      lambda e: batches.epoch_order(state.subset, shuffle_key, first_epoch + e), jnp.arange(n_epochs)
    )
    state, metrics = jax.lax.scan(lambda s, _: step_one(s, key, orders_ExN, first_epoch), state, None, length=n_steps)
    means = jax.tree.map(lambda m: m.mean(), metrics)
    means["diverged"] = diverged(metrics["loss"], state)
    return state, means

  run_segment = network_jit(jax.vmap(segment_one, in_axes=(0, 0, None)), static_argnums=2, donate_argnums=0)

  def abstract_state(n_seeds: int):
    """Shapes, dtypes and the seed sharding over all devices (`leut.train.sharding`): a restore target."""
    keys = jax.eval_shape(lambda: seed_keys(0, n_seeds))
    return sharding.with_seed_sharding(jax.eval_shape(init_all, keys), n_seeds)

  return Trainer(init_all, run_segment, abstract_state, network)
