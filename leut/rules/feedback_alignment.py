"""Feedback alignment (FA): errors travel backwards through fixed random matrices B instead of Wᵀ.

Lillicrap, Cownden, Tweed & Akerman (2016), "Random synaptic feedback weights support error backpropagation for
deep learning", Nat. Commun. 7:13276. For a layer z = W * x (conv or dense) receiving the error δ = ∂L/∂z:

    ΔW ∝ −x ⊗ δ            (the true weight gradient given δ: `patch_correlation(x, δ)` for a conv)
    δ_x = Bᵀ δ              (instead of Wᵀ δ; for a conv: `conv_transpose(δ, B)`)

B has W's shape, is drawn once from the key in `init`, lives in the rule state and is never updated. Everything
between layers (BatchNorm, ReLU, max-pool, dropout) is differentiated exactly, as in the published code.

Scope (PROTOCOL §2.4): `layers="conv"` (published) uses FA for the three convs and exact backprop for fc1/fc2;
`layers="all"` also routes the fc2→fc1 and fc1→conv3 errors through B.

Initialisation: leut draws W with the BP initialisation for every rule (the untrained network is then every rule's
epoch 0). The published FA used `kaiming_normal` W (`cnn.init(conv_init="kaiming_normal")`, a model option) and a
xavier-normal B (`feedback_init="xavier_normal"` here). The published FA convs also had a (zero-initialised) bias,
which the shared model does not have.

Protocol optimiser: clip 1.0 → coupled L2 1e-4 → SGD(momentum 0.9) with lr 5e-4 on a per-epoch cosine.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from leut import optimizers
from leut.models import cnn
from leut.models import layers as model_layers  # `layers` is the rule's scope option
from leut.rules import _local, base

FC_LAYERS = ("fc1", "fc2")


@jax.custom_vjp
def fa_conv(x_NxHxWxC: jax.Array, kernel_3x3xCxO: jax.Array, feedback_3x3xCxO: jax.Array) -> jax.Array:
  """`conv3x3(x, kernel)` whose backward pass sends the error to `x` through `feedback` instead of `kernel`."""
  return model_layers.conv3x3(x_NxHxWxC, kernel_3x3xCxO)


def _fa_conv_fwd(x, kernel, feedback):
  return model_layers.conv3x3(x, kernel), (x, feedback)


def _fa_conv_bwd(res, delta_NxHxWxO):
  x, feedback = res
  return (
    _local.conv_transpose(delta_NxHxWxO, feedback),
    _local.patch_correlation(x, delta_NxHxWxO),
    jnp.zeros_like(feedback),
  )


fa_conv.defvjp(_fa_conv_fwd, _fa_conv_bwd)


@jax.custom_vjp
def fa_dense(x_NxI: jax.Array, kernel_IxO: jax.Array, feedback_IxO: jax.Array) -> jax.Array:
  """`x @ kernel` whose backward pass sends the error to `x` as `δ Bᵀ` instead of `δ Wᵀ`."""
  return x_NxI @ kernel_IxO


def _fa_dense_fwd(x, kernel, feedback):
  return x @ kernel, (x, feedback)


def _fa_dense_bwd(res, delta_NxO):
  x, feedback = res
  return delta_NxO @ feedback.T, x.T @ delta_NxO, jnp.zeros_like(feedback)


fa_dense.defvjp(_fa_dense_fwd, _fa_dense_bwd)


class FeedbackAlignmentState(NamedTuple):
  feedback: dict  # layer name -> fixed B, shaped like that layer's kernel


def _draw_feedback(key, shape, how: str):
  fan_in = 9 * shape[2] if len(shape) == 4 else shape[0]
  fan_out = 9 * shape[3] if len(shape) == 4 else shape[1]
  if how == "torch_default":
    return _local.uniform(key, shape, fan_in)
  if how == "xavier_normal":
    return jax.random.normal(key, shape) * jnp.sqrt(2.0 / (fan_in + fan_out))
  raise ValueError(f"unknown feedback_init {how!r}; use 'torch_default' or 'xavier_normal'")


def fa_forward(params, model_state, x_NxHxWx3, feedback, *, train: bool, dropout_key=None, dropout_rate=0.0):
  """The protocol CNN with FA on every layer that has an entry in `feedback`. Returns `(logits, new_state)`."""

  def hook(name, x, kernel):
    return fa_conv(x, kernel, feedback[name]) if name in feedback else model_layers.conv3x3(x, kernel)

  def dense(name, x):
    kernel = params[name]["kernel"]
    z = fa_dense(x, kernel, feedback[name]) if name in feedback else x @ kernel
    return z + params[name]["bias"][None, :]

  new_state = dict(model_state)
  h = x_NxHxWx3
  for name in cnn.CONV_LAYERS:
    h, stats = cnn.conv_block(params, model_state, name, h, train=train, conv=hook)
    if stats is not None:
      new_state[cnn.BN_OF[name]] = stats
  pooled = model_layers.adaptive_avg_pool(h, 4)
  fc1 = jax.nn.relu(dense("fc1", pooled.reshape(pooled.shape[0], -1)))
  if train and dropout_rate > 0.0:
    fc1 = model_layers.dropout(dropout_key, fc1, dropout_rate)
  return dense("fc2", fc1), new_state


def feedback_alignment(
  *, layers: str = "conv", dropout_rate: float = 0.3, feedback_init: str = "torch_default"
) -> base.LearningRule:
  """FA as a `LearningRule`.

  Args:
    layers: "conv" (FA for conv1..conv3, exact fc; published) or "all" (FA for fc1 and fc2 too).
    dropout_rate: dropout after ReLU(fc1) in training (0.3 as published).
    feedback_init: distribution of B: "torch_default" (the same U(±1/sqrt(fan_in)) as W) or "xavier_normal"
      (published, N(0, 2/(fan_in+fan_out))).
  """
  if layers not in ("conv", "all"):
    raise ValueError(f"feedback_alignment: layers must be 'conv' or 'all', got {layers!r}")
  fa_layers = cnn.CONV_LAYERS + (FC_LAYERS if layers == "all" else ())

  def init(key, params):
    keys = jax.random.split(key, len(fa_layers))
    return FeedbackAlignmentState(
      {name: _draw_feedback(k, params[name]["kernel"].shape, feedback_init) for name, k in zip(fa_layers, keys)}
    )

  def update(params, model_state, rule_state, batch: base.Batch, key):
    def loss_fn(p):
      logits, new_state = fa_forward(
        p, model_state, batch.images, rule_state.feedback, train=True, dropout_key=key, dropout_rate=dropout_rate
      )
      return base.cross_entropy(logits, batch.labels), (logits, new_state)

    (loss, (logits, new_state)), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    return base.RuleUpdate(grads, new_state, rule_state, base.classification_metrics(loss, logits, batch.labels))

  return base.LearningRule(init, update)


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
