"""Feedback alignment (FA): errors travel backwards through fixed random matrices B instead of Wᵀ.

Lillicrap, Cownden, Tweed & Akerman (2016), "Random synaptic feedback weights support error backpropagation for
deep learning", Nat. Commun. 7:13276. For a layer z = W * x (conv or dense) receiving the error δ = ∂L/∂z:

    ΔW ∝ −x ⊗ δ            (the true weight gradient given δ: `patch_correlation(x, δ)` for a conv)
    δ_x = Bᵀ δ              (instead of Wᵀ δ; for a conv: `conv_transpose(δ, B)`)

B has W's shape, is drawn once from the key in `init`, lives in the rule state and is never updated. Everything
between layers (BatchNorm, ReLU, max-pool, dropout) is differentiated exactly, as in the published code.

Scope (PROTOCOL §2.4): `layers="conv"` (published) uses FA for every convolution and exact backprop for fc1/fc2;
`layers="all"` also routes the fc2→fc1 and fc1→conv errors through B. The network does the routing
(`Network.apply(..., feedback=B)`, `leut.models`): in leut's CNN each training block stays the fused per-seed
block, its backward given B for ∂x (`layers.conv_bn_relu_pool`); a flax model's Dense/Conv layers are intercepted.

Initialisation: by default W has the initialisation every rule shares (the untrained network is then every rule's
epoch 0). The published FA used `kaiming_normal` W with a zero-initialised conv bias (`config.model.init_per_rule`,
see `leut.models.init_options`) and a xavier-normal B (`feedback_init="xavier_normal"` here).

Protocol optimiser: clip 1.0 (as torch's `clip_grad_norm_`) → coupled L2 1e-4 → SGD(momentum 0.9) with lr 5e-4 on
a per-epoch cosine.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from leut import optimizers
from leut.models import layers as model_layers  # `layers` is the rule's scope option
from leut.models.network import Network, kernel_at
from leut.rules import _local, base

# The linear ops with a replaceable error path live with the network; kept here under their rule's names.
fa_conv = model_layers.conv3x3_feedback
fa_dense = model_layers.dense_feedback


class FeedbackAlignmentState(NamedTuple):
  feedback: dict  # layer name -> fixed B, shaped like that layer's kernel


def _draw_feedback(key, shape, how: str):
  fan_in = shape[0] if len(shape) == 2 else shape[0] * shape[1] * shape[2]
  fan_out = shape[1] if len(shape) == 2 else shape[0] * shape[1] * shape[3]
  if how == "torch_default":
    return _local.uniform(key, shape, fan_in)
  if how == "xavier_normal":
    return jax.random.normal(key, shape) * jnp.sqrt(2.0 / (fan_in + fan_out))
  raise ValueError(f"unknown feedback_init {how!r}; use 'torch_default' or 'xavier_normal'")


def feedback_alignment(
  network: Network, *, layers: str = "conv", dropout_rate: float = 0.3, feedback_init: str = "torch_default"
) -> base.LearningRule:
  """FA on `network` as a `LearningRule`.

  Args:
    layers: "conv" (FA for every convolution, exact dense layers; published) or "all" (FA for the dense layers
      too).
    dropout_rate: dropout after ReLU(fc1) in training (0.3 as published).
    feedback_init: distribution of B: "torch_default" (the same U(±1/sqrt(fan_in)) as W) or "xavier_normal"
      (published, N(0, 2/(fan_in+fan_out))).
  """
  if layers not in ("conv", "all"):
    raise ValueError(f"feedback_alignment: layers must be 'conv' or 'all', got {layers!r}")
  fa_layers = [lin for lin in network.linear_layers if lin.kind == "conv"]
  fa_layers += [lin for lin in network.linear_layers if lin.kind == "dense" and layers == "all"]

  def init(key, params):
    keys = jax.random.split(key, len(fa_layers))
    return FeedbackAlignmentState(
      {lin.name: _draw_feedback(k, kernel_at(params, lin).shape, feedback_init) for lin, k in zip(fa_layers, keys)}
    )

  def update(params, model_state, rule_state, batch: base.Batch, key):
    loss, logits, new_state, grads = base.supervised_gradients(
      network, params, model_state, batch, key, dropout_rate=dropout_rate, feedback=rule_state.feedback
    )
    return base.RuleUpdate(grads, new_state, rule_state, base.classification_metrics(loss, logits, batch.labels))

  return base.LearningRule(init, update, base.feedforward(network))


def protocol_optimizer(
  *,
  steps_per_epoch: int,
  epochs: int,
  learning_rate: float = 5e-4,
  momentum: float = 0.9,
  weight_decay: float = 1e-4,
  clip_norm: float = 1.0,
) -> optax.GradientTransformation:
  """The published FA optimiser (PROTOCOL §2.4): clip → coupled L2 → SGD with momentum → per-epoch cosine."""
  return optimizers.sgd_momentum_l2(
    optimizers.epoch_cosine(learning_rate, steps_per_epoch, epochs),
    momentum=momentum,
    weight_decay=weight_decay,
    clip_norm=clip_norm,
  )
