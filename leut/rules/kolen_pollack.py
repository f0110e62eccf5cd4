"""Kolen–Pollack (KP): feedback weights B learn with the same update as the forward weights, plus weight decay, so they
come to equal them.

Kolen & Pollack (1994), "Backpropagation without weight transport", ICNN; Akrout, Wilson, Humphreys, Lillicrap &
Tweed (2019), "Deep learning without weight transport", NeurIPS. For a layer z = W * x with error δ = ∂L/∂z,
errors travel back through B as in feedback alignment (δ_x = Bᵀ δ), and with the same step η and decay λ

    W ← W − η (x ⊗ δ + λ W),      B ← B − η (x ⊗ δ + λ B)

so W − B ← (1 − ηλ)(W − B): the difference decays geometrically whatever the errors, and B aligns with W
without any weight transport (each synapse sees only its own pre- and post-synaptic signals). With momentum μ both
move along the same momentum trace, and D_t = W_t − B_t obeys the linear recurrence of SGD-with-momentum on the
loss λ‖D‖²/2 (the test checks it).

Here W's step is the optimiser's (`protocol_optimizer`: SGD with momentum μ and coupled L2 λ, constant η, no clipping)
and B's is the same transformation built from the same hyperparameters, applied by the rule to the same x ⊗ δ, so
the two updates are identical as KP requires. A different optimiser for W (e.g. Adam) breaks that identity.
B starts as an independent draw like feedback alignment's (U(±1/sqrt(fan_in))).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import optax

from leut import optimizers
from leut.models.network import Network, kernel_at
from leut.rules import _local, base
from leut.rules.sign_symmetry import fan_in


class KolenPollackState(NamedTuple):
  feedback: dict  # layer name -> B, shaped like that layer's kernel
  feedback_opt_state: Any  # state of B's optimiser (the momentum trace)


def kp_optimizer(learning_rate: float, momentum: float, weight_decay: float) -> optax.GradientTransformation:
  """The step shared by W and B: coupled L2 λ → SGD momentum μ → constant step η."""
  return optimizers.sgd_momentum_l2(
    optax.constant_schedule(learning_rate), momentum=momentum, weight_decay=weight_decay, clip_norm=None
  )


def kolen_pollack(
  network: Network,
  *,
  layers: str = "all",
  dropout_rate: float = 0.3,
  learning_rate: float = 0.01,
  momentum: float = 0.9,
  weight_decay: float = 1e-3,
) -> base.LearningRule:
  """Kolen–Pollack on `network` as a `LearningRule`.

  Args:
    layers: "all" (every conv and dense layer learns its feedback) or "conv" (convolutions only, exact dense layers).
    dropout_rate: dropout after ReLU(fc1) in training.
    learning_rate, momentum, weight_decay: η, μ, λ of the step B shares with W (also the protocol optimiser's).
  """
  if layers not in ("conv", "all"):
    raise ValueError(f"kolen_pollack: layers must be 'conv' or 'all', got {layers!r}")
  kp_layers = [lin for lin in network.linear_layers if lin.kind == "conv" or layers == "all"]
  feedback_tx = kp_optimizer(learning_rate, momentum, weight_decay)

  def init(key, params):
    keys = jax.random.split(key, len(kp_layers))
    shapes = {lin.name: kernel_at(params, lin).shape for lin in kp_layers}
    feedback = {
      lin.name: _local.uniform(k, shapes[lin.name], fan_in(shapes[lin.name])) for lin, k in zip(kp_layers, keys)
    }
    return KolenPollackState(feedback, feedback_tx.init(feedback))

  def update(params, model_state, rule_state, batch: base.Batch, key):
    loss, logits, new_state, grads = base.supervised_gradients(
      network, params, model_state, batch, key, dropout_rate=dropout_rate, feedback=rule_state.feedback
    )
    kernel_grads = {lin.name: kernel_at(grads, lin) for lin in kp_layers}  # x ⊗ δ of each layer
    b_updates, b_opt_state = feedback_tx.update(kernel_grads, rule_state.feedback_opt_state, rule_state.feedback)
    feedback = optax.apply_updates(rule_state.feedback, b_updates)
    metrics = base.classification_metrics(loss, logits, batch.labels)
    return base.RuleUpdate(grads, new_state, KolenPollackState(feedback, b_opt_state), metrics)

  return base.LearningRule(init, update, base.feedforward(network))


def protocol_optimizer(
  *,
  steps_per_epoch: int,
  epochs: int,
  learning_rate: float = 0.01,
  momentum: float = 0.9,
  weight_decay: float = 1e-3,
) -> optax.GradientTransformation:
  """W's step, identical to B's (`kp_optimizer`): coupled L2 → SGD momentum → constant learning rate."""
  del steps_per_epoch, epochs
  return kp_optimizer(learning_rate, momentum, weight_decay)
