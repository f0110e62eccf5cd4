"""The untrained baseline: the network at its initialisation, never updated (PROTOCOL §2.2).

Its update direction is zero and its optimiser is `optax.set_to_zero()`, so even if it were stepped nothing would
move. It shares the initialisation key of every trained rule, so with one shared initialisation (the default) it
equals each rule's epoch-0 checkpoint; with per-rule initialisations (`model.init_per_rule`, the published
starting points) it is the epoch 0 only of the rules that share its initialisation (BP and PC).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from leut.models.network import Network
from leut.rules import base


def untrained(network: Network) -> base.LearningRule:
  """A `LearningRule` whose update is all zeros and leaves BatchNorm statistics untouched."""

  def init(key, params):
    del key, params
    return base.EmptyState()

  def update(params, model_state, rule_state, batch: base.Batch, key):
    del key
    logits, _, _ = network.apply(params, model_state, batch.images, train=False)
    loss = base.cross_entropy(logits, batch.labels)
    zeros = jax.tree.map(jnp.zeros_like, params)
    return base.RuleUpdate(zeros, model_state, rule_state, base.classification_metrics(loss, logits, batch.labels))

  return base.LearningRule(init, update, base.feedforward(network))


def protocol_optimizer(*, steps_per_epoch: int, epochs: int) -> optax.GradientTransformation:
  del steps_per_epoch, epochs
  return optax.set_to_zero()


TRAINS = False  # only the epoch-0 checkpoint is written
