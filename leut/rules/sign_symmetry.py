"""Sign symmetry: errors travel backwards through the signs of the forward weights, not the weights themselves.

Liao, Leibo & Poggio (2016), "How important is weight symmetry in backpropagation?", AAAI; Xiao, Chen, Liao &
Poggio (2019), "Biologically-plausible learning algorithms can scale to large datasets", ICLR. For a layer
z = W * x receiving the error δ = ∂L/∂z:

    ΔW ∝ −x ⊗ δ                 (the true weight gradient given δ)
    δ_x = Bᵀ δ,   B = sign(W) ∘ M

with M the feedback magnitudes:
  - `magnitude="uniform"`: M = 1/sqrt(fan_in) everywhere (the bound of the shared U(±1/sqrt(fan_in)) init, so the
    backward signal has the scale of backprop's at initialisation);
  - `magnitude="random"`: M = |R|, R drawn once in `init` like feedback alignment's B and never updated (Liao et
    al.'s "random magnitude sign-concordant feedback").
B follows the forward weights' signs at every step (weight transport of one bit per synapse). Everything between
layers (BatchNorm, ReLU, pool, dropout) is differentiated exactly, as in feedback alignment, and the network does
the routing (`Network.apply(..., feedback=B)`).

Protocol optimiser: backprop's (clip 1.0, coupled L2 1e-4, Adam 1e-3, per-epoch cosine); sign symmetry is not in
the published protocol.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from leut.models.network import Network, kernel_at
from leut.rules import _local, base
from leut.rules.backprop import protocol_optimizer  # noqa: F401  (sign symmetry trains with backprop's optimiser)


class SignSymmetryState(NamedTuple):
  magnitudes: dict  # layer name -> fixed |R| shaped like its kernel ("random"); empty for "uniform"


def fan_in(shape) -> int:
  """Inputs per output unit of a dense (K x O) or conv (h x w x C x O) kernel."""
  return shape[0] if len(shape) == 2 else shape[0] * shape[1] * shape[2]


def sign_feedback(kernel: jax.Array, magnitude: jax.Array | None) -> jax.Array:
  """B = sign(W) ∘ M with M = `magnitude`, or 1/sqrt(fan_in) when it is None; no gradient flows into W through B."""
  m = (1.0 / jnp.sqrt(float(fan_in(kernel.shape)))) if magnitude is None else magnitude
  return jax.lax.stop_gradient(jnp.sign(kernel) * m)


def sign_symmetry(
  network: Network, *, magnitude: str = "uniform", layers: str = "all", dropout_rate: float = 0.3
) -> base.LearningRule:
  """Sign symmetry on `network` as a `LearningRule`.

  Args:
    magnitude: "uniform" (|B| = 1/sqrt(fan_in)) or "random" (|B| fixed random, U(0, 1/sqrt(fan_in))).
    layers: "all" (every conv and dense layer sends its error back through sign(W)) or "conv" (the convolutions
      only, exact dense layers).
    dropout_rate: dropout after ReLU(fc1) in training.
  """
  if magnitude not in ("uniform", "random"):
    raise ValueError(f"sign_symmetry: magnitude must be 'uniform' or 'random', got {magnitude!r}")
  if layers not in ("conv", "all"):
    raise ValueError(f"sign_symmetry: layers must be 'conv' or 'all', got {layers!r}")
  ss_layers = [lin for lin in network.linear_layers if lin.kind == "conv" or layers == "all"]

  def init(key, params):
    if magnitude == "uniform":
      return SignSymmetryState({})
    keys = jax.random.split(key, len(ss_layers))
    shapes = {lin.name: kernel_at(params, lin).shape for lin in ss_layers}
    return SignSymmetryState(
      {
        lin.name: jnp.abs(_local.uniform(k, shapes[lin.name], fan_in(shapes[lin.name])))
        for lin, k in zip(ss_layers, keys)
      }
    )

  def update(params, model_state, rule_state, batch: base.Batch, key):
    feedback = {
      lin.name: sign_feedback(kernel_at(params, lin), rule_state.magnitudes.get(lin.name)) for lin in ss_layers
    }

    loss, logits, new_state, grads = base.supervised_gradients(
      network, params, model_state, batch, key, dropout_rate=dropout_rate, feedback=feedback
    )
    return base.RuleUpdate(grads, new_state, rule_state, base.classification_metrics(loss, logits, batch.labels))

  return base.LearningRule(init, update, base.feedforward(network))
