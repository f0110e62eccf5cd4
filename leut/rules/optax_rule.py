"""A learning rule as an optax transformation, so that it composes with any optax optimiser.

    rule_tx = leut.rules.transform("feedback_alignment", network=net)        # or as_transform(rule, net)
    tx = optax.chain(rule_tx, optax.clip_by_global_norm(1.0), optax.adam(1e-3))
    state = tx.init(params)                                                  # inside `init_key(key)`, or key=...
    updates, state = tx.update(None, state, params, batch=batch, key=key, model_state=model_state)
    params = optax.apply_updates(params, updates)
    out = rule_output(state)            # the rule's new model state (BatchNorm statistics), rule state and metrics

A rule is a *source* of updates: it ignores the updates it receives and emits its direction g (gradient
convention, `LearningRule.update`), so it comes first in a chain and everything after it shapes g exactly as it
shapes a gradient. `optax.GradientTransformationExtraArgs` carries what a rule needs besides the parameters: the
batch, the step's key and the model state. What the rule returns besides g (the model state after the step, its
own state, the batch metrics) is the rule's slot of the optimiser state, a `RuleTransformState`.

leut's trainer runs every rule this way (`leut.train.loop`): with a plain optimiser `tx` it runs
`optax.chain(as_transform(rule, net), tx)`, and a chain that already holds a rule runs as it is. The rule's random
state (feedback matrices, generative weights) is drawn in `init` from a key: `key=` here, or the key of the
enclosing `init_key(key)` block, which is how the trainer gives every seed its own.
"""

from __future__ import annotations

import contextlib
import contextvars
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from leut.models.network import Network
from leut.rules.base import Batch, LearningRule


class RuleTransformState(NamedTuple):
  """The rule's slot in the optimiser state: its own state, and what its last update returned besides g."""

  rule_state: Any
  model_state: Any  # BatchNorm running statistics after the last update
  metrics: Any  # {name: scalar} of the last update's batch


_INIT_KEY: contextvars.ContextVar = contextvars.ContextVar("leut_rule_init_key", default=None)


@contextlib.contextmanager
def init_key(key: jax.Array):
  """Every rule transform initialised inside this block draws its random state from `key` (may be traced)."""
  token = _INIT_KEY.set(key)
  try:
    yield
  finally:
    _INIT_KEY.reset(token)


def as_transform(
  rule: LearningRule,
  network: Network,
  *,
  key: jax.Array | None = None,
  metrics: tuple[str, ...] | None = ("loss", "accuracy"),
) -> optax.GradientTransformationExtraArgs:
  """`rule` (built for `network`) as an optax transformation whose `update(updates, state, params, *, batch, key,
  model_state)` returns the rule's direction for `params` on `batch` (the incoming `updates` are ignored).

  Args:
    key: the key `init` draws the rule's state from when not inside `init_key` (which takes precedence).
    metrics: names of the batch metrics kept in the state ("loss" and "accuracy" every rule returns), or None for
      all the rule returns (the state then has no metrics before the first update: for a caller that does not
      carry the state through `lax.scan` unchanged, such as leut's trainer, which keeps the slot out of its carry).
  """
  names = None if metrics is None else tuple(metrics)

  def init_fn(params):
    rule_key = _INIT_KEY.get()
    rule_key = key if rule_key is None else rule_key
    if rule_key is None:
      raise ValueError(
        "a rule transform draws its state from a key: build it with as_transform(rule, network, key=...) or call "
        "init inside `with leut.rules.init_key(key):`"
      )
    _, model_shapes = jax.eval_shape(network.init, jax.random.key(0))
    return RuleTransformState(
      rule_state=rule.init(rule_key, params),
      model_state=jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), model_shapes),
      metrics={name: jnp.zeros((), jnp.float32) for name in names or ()},
    )

  def update_fn(updates, state: RuleTransformState, params=None, *, batch: Batch, key: jax.Array, model_state, **_):
    del updates  # a rule is the source of the direction
    if params is None:
      raise ValueError("a rule transform needs the parameters: call update(updates, state, params, ...)")
    out = rule.update(params, model_state, state.rule_state, batch, key)
    missing = set(names or ()) - set(out.metrics)
    if missing:
      raise ValueError(
        f"the rule's update does not return metric(s) {sorted(missing)}; it returns {sorted(out.metrics)}"
      )
    kept = dict(out.metrics) if names is None else {name: out.metrics[name] for name in names}
    return out.grads, RuleTransformState(out.rule_state, out.model_state, kept)

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def _is_slot(node) -> bool:
  return isinstance(node, RuleTransformState)


def rule_slots(opt_state) -> list[RuleTransformState]:
  """Every rule slot in an optimiser state (one for a well-formed chain)."""
  return [node for node in jax.tree.leaves(opt_state, is_leaf=_is_slot) if _is_slot(node)]


def rule_output(opt_state) -> RuleTransformState:
  """The slot of the one rule in `opt_state` (after an update: the rule's new states and batch metrics)."""
  slots = rule_slots(opt_state)
  if len(slots) != 1:
    raise ValueError(f"expected one learning rule in the optimiser chain, found {len(slots)}")
  return slots[0]


EMPTY_SLOT = RuleTransformState(None, None, None)  # a slot whose contents the trainer keeps in `TrainState`


def replace_rule_slot(opt_state, slot: RuleTransformState):
  """`opt_state` with its rule slot replaced by `slot`."""
  return jax.tree.map(lambda node: slot if _is_slot(node) else node, opt_state, is_leaf=_is_slot)
