"""Backpropagation: the exact gradient of the cross-entropy loss (Rumelhart, Hinton & Williams 1986).

    g_θ = ∂/∂θ  CE(f_θ(x), y),   f in training mode (batch-statistic BatchNorm, dropout on fc1)

Protocol optimiser (PROTOCOL §2.3): global-norm clip 1.0, coupled L2 weight decay 1e-4 added to the gradient,
Adam(1e-3, β=(0.9, 0.999), ε=1e-8), learning rate on a per-epoch cosine schedule.
"""

from __future__ import annotations

import optax

from leut import optimizers
from leut.models.network import Network
from leut.rules import base


def backprop(network: Network, *, dropout_rate: float = 0.3) -> base.LearningRule:
  """Backprop on `network` as a `LearningRule`; `dropout_rate` applies after ReLU(fc1) in training only."""

  def init(key, params):
    del key, params
    return base.EmptyState()

  def update(params, model_state, rule_state, batch: base.Batch, key):
    loss, logits, new_state, grads = base.supervised_gradients(
      network, params, model_state, batch, key, dropout_rate=dropout_rate
    )
    return base.RuleUpdate(grads, new_state, rule_state, base.classification_metrics(loss, logits, batch.labels))

  return base.LearningRule(init, update, base.feedforward(network))


def protocol_optimizer(
  *, steps_per_epoch: int, epochs: int, learning_rate: float = 1e-3, weight_decay: float = 1e-4, clip_norm: float = 1.0
) -> optax.GradientTransformation:
  """The published BP optimiser: clip → coupled L2 → Adam → per-epoch cosine learning rate."""
  return optimizers.adam_l2(
    optimizers.epoch_cosine(learning_rate, steps_per_epoch, epochs), weight_decay=weight_decay, clip_norm=clip_norm
  )
