"""The contract every learning rule follows (optax style: a pair of pure functions over NamedTuple state).

A rule turns activity into an *update direction* for every parameter, in gradient convention (the optimiser
descends along it: a local rule that wants ΔW returns -ΔW). An optax `GradientTransformation` (chain, clip,
`multi_transform` for per-layer optimisers) then shapes and applies that direction. Everything is pure, so a
rule jits, `vmap`s over seeds and `scan`s over steps like backprop does.

    rule = leut.rules.backprop.backprop(dropout_rate=0.3)
    rule_state = rule.init(key, params)
    out = rule.update(params, model_state, rule_state, batch, key)     # -> RuleUpdate
    updates, opt_state = tx.update(out.grads, opt_state, params)
    params = optax.apply_updates(params, updates)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from leut.models import cnn


class Batch(NamedTuple):
  images: jax.Array  # N x H x W x 3, normalised float32
  labels: jax.Array  # N int32


class RuleUpdate(NamedTuple):
  grads: Any  # pytree shaped like params, gradient convention
  model_state: Any  # BatchNorm running statistics after the step
  rule_state: Any
  metrics: dict  # scalar arrays, at least "loss" and "accuracy" on the batch


class EmptyState(NamedTuple):
  """State of a rule that keeps none."""


class LearningRule(NamedTuple):
  """`init(key, params) -> state`; `update(params, model_state, state, batch, key) -> RuleUpdate`.

  `evaluate(params, model_state, state, x) -> (logits, features)` is the rule's evaluation-mode readout; None means
  the plain feedforward network (`evaluate_feedforward`). Predictive coding overrides it, since its
  representations are the ones after inference.
  """

  init: Callable
  update: Callable
  evaluate: Callable | None = None


def evaluate_feedforward(params, model_state, rule_state, x_NxHxWx3):
  """Evaluation-mode logits and per-layer features of the plain network (running BatchNorm statistics)."""
  del rule_state
  logits, acts, _ = cnn.apply(params, model_state, x_NxHxWx3, train=False)
  return logits, cnn.pooled_features(acts)


def evaluate_fn(rule: LearningRule) -> Callable:
  return rule.evaluate if rule.evaluate is not None else evaluate_feedforward


def cross_entropy(logits_NxK: jax.Array, labels_N: jax.Array) -> jax.Array:
  """Mean softmax cross-entropy."""
  return optax.softmax_cross_entropy_with_integer_labels(logits_NxK, labels_N).mean()


def classification_metrics(loss: jax.Array, logits_NxK: jax.Array, labels_N: jax.Array) -> dict:
  return {"loss": loss, "accuracy": jnp.mean(jnp.argmax(logits_NxK, -1) == labels_N)}
