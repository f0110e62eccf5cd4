"""The contract every learning rule follows (optax style: a pair of pure functions over NamedTuple state).

A rule turns activity into an *update direction* for every parameter, in gradient convention (the optimiser
descends along it: a local rule that wants ΔW returns -ΔW). An optax `GradientTransformation` (chain, clip,
`multi_transform` for per-layer optimisers) then shapes and applies that direction. Everything is pure, so a
rule jits, `vmap`s over seeds and `scan`s over steps like backprop does.

    net = leut.models.build(config.model)                 # the network (`leut.models.Network`)
    rule = leut.rules.backprop.backprop(net, dropout_rate=0.3)
    rule_state = rule.init(key, params)
    out = rule.update(params, model_state, rule_state, batch, key)     # -> RuleUpdate
    updates, opt_state = tx.update(out.grads, opt_state, params)
    params = optax.apply_updates(params, updates)
    logits, feats = rule.represent(params, model_state, rule_state, x)  # evaluation-mode readout

The same rule is an optax transformation too (`leut.rules.as_transform(rule, net)`, `leut.rules.optax_rule`): it
emits `out.grads` as the first link of an optax chain, which is what leut's trainer runs.

A rule reaches the network only through the `Network` it was built with (its blocks, `apply` with `feedback` /
`detach`, `head`, `readout`): see `leut.models`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from leut.models.network import Network, pooled_features


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
  """`init(key, params) -> state`; `update(params, model_state, state, batch, key) -> RuleUpdate`;
  `represent(params, model_state, state, x) -> (logits, {layer: N x U})`, the evaluation-mode readout that is
  scored against the brain (running BatchNorm statistics; `feedforward(net)` for most rules, predictive coding
  reads its representations after inference)."""

  init: Callable
  update: Callable
  represent: Callable


_FEEDFORWARD = {}


def feedforward(network: Network) -> Callable:
  """The plain network's evaluation-mode `(logits, features)`: one function object per network, so every rule that
  reads it shares one compiled feature extraction."""
  if network not in _FEEDFORWARD:

    def represent(params, model_state, rule_state, x_NxHxWx3):
      del rule_state
      logits, acts, _ = network.apply(params, model_state, x_NxHxWx3, train=False)
      return logits, pooled_features(acts)

    _FEEDFORWARD[network] = represent
  return _FEEDFORWARD[network]


def needs_blocks(rule_name: str, network: Network) -> None:
  """Refuse a network without leut blocks (a user flax model) for a rule that works block by block."""
  if not network.blocks:
    raise ValueError(
      f"{rule_name} works on leut's block networks (model.name 'cnn' or 'resnet'), not on a {network.name!r} "
      "model; a flax model trains with backprop, feedback_alignment or direct_feedback_alignment"
    )


def cross_entropy(logits_NxK: jax.Array, labels_N: jax.Array) -> jax.Array:
  """Mean softmax cross-entropy."""
  return optax.softmax_cross_entropy_with_integer_labels(logits_NxK, labels_N).mean()


def supervised_gradients(
  network: Network, params, model_state, batch: Batch, key, *, dropout_rate: float, feedback: dict | None = None
) -> tuple[jax.Array, jax.Array, Any, Any]:
  """(loss, logits, new model state, ∂loss/∂params) of the cross-entropy on `batch`, in training mode.

  With `feedback` ({linear layer name: B}) every listed layer sends its error back through B instead of Wᵀ, the
  error path of feedback alignment, sign symmetry and Kolen–Pollack (`Network.apply`); without it, exact backprop.
  """

  def loss_fn(p):
    logits, _, new_state = network.apply(
      p, model_state, batch.images, train=True, dropout_key=key, dropout_rate=dropout_rate, feedback=feedback
    )
    return cross_entropy(logits, batch.labels), (logits, new_state)

  (loss, (logits, new_state)), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
  return loss, logits, new_state, grads


def classification_metrics(loss: jax.Array, logits_NxK: jax.Array, labels_N: jax.Array) -> dict:
  return {"loss": loss, "accuracy": jnp.mean(jnp.argmax(logits_NxK, -1) == labels_N)}
