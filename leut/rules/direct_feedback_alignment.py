"""Direct feedback alignment (DFA): the output error reaches every hidden layer directly through a fixed random map.

Nøkland (2016), "Direct feedback alignment provides learning in deep neural networks", NeurIPS. With the output
error e = softmax(logits) − onehot(y) (the exact ∂CE/∂logits), every hidden layer l with output h_l receives

    δ_l = broadcast(e B_l)                  B_l: K x C_l, fixed, drawn in `init`, never updated

instead of the backpropagated error, and its parameters θ_l move along −δ_l · ∂h_l/∂θ_l, the *local* derivative
of the layer alone (its own conv, BatchNorm, ReLU, max-pool; nothing above it). fc2 gets the exact gradient.

Conv layers: B_l maps the 10-d error to the C_l channels and the result is spread uniformly over the H x W block
output, divided by H·W. That is the adjoint of global average pooling, i.e. δ_l = ∂/∂h_l [e · B_lᵀ mean_hw(h_l)]:
each layer is trained as if its spatially averaged features (the features RSA scores) fed the output through B_l,
and the per-layer signal does not grow with the map size. The ReLU, pool and BN derivatives enter through ∂h_l/∂θ_l.

How it is computed (the whole rule is one autodiff call): `Network.apply(..., detach=True)` stops the gradient at
each stage's input and returns the stage outputs h_l (leut's blocks and fc1; for a flax model, the input of every
Dense/Conv layer after the first), so ∂/∂θ of the surrogate  CE(logits) + Σ_l ⟨h_l, stop_gradient(δ_l)⟩  is
exactly the DFA direction for every θ.

B_l ~ U(±1/sqrt(C_l)), the scale of the forward init of a C_l → K map, so |δ_l| at init matches backprop's.
Protocol optimiser: the BP one (clip 1.0, coupled L2 1e-4, Adam 1e-3, per-epoch cosine); DFA is not in the
published protocol.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp

from leut.models.network import Network
from leut.rules import _local, base
from leut.rules.backprop import protocol_optimizer  # noqa: F401  (DFA trains with backprop's optimiser)


class DFAState(NamedTuple):
  feedback: dict  # hidden layer name -> fixed B, K x C_l


def project_error(e_NxK: jax.Array, feedback_KxC: jax.Array, shape: Sequence[int]) -> jax.Array:
  """δ = e B, broadcast to a hidden output of `shape` (N x C, or N x H x W x C divided by H·W)."""
  delta_NxC = e_NxK @ feedback_KxC
  if len(shape) == 2:
    return delta_NxC
  n, h, w, c = shape
  return jnp.broadcast_to(delta_NxC[:, None, None, :] / (h * w), (n, h, w, c))


def dfa_surrogate(hidden: Sequence[jax.Array], e_NxK: jax.Array, feedback: Sequence[jax.Array]) -> jax.Array:
  """Σ_l ⟨h_l, sg(δ_l)⟩: its gradient w.r.t. layer l's parameters is the DFA update (inputs must be detached)."""
  e_NxK = jax.lax.stop_gradient(e_NxK)
  return sum(jnp.sum(h * jax.lax.stop_gradient(project_error(e_NxK, b, h.shape))) for h, b in zip(hidden, feedback))


def hidden_shapes(network: Network, params) -> dict:
  """Shapes of the hidden stages DFA feeds (`apply(detach=True)`'s acts) for one 32-px image, and of the logits."""
  _, state = jax.eval_shape(network.init, jax.random.key(0))
  x = jax.ShapeDtypeStruct((1, 32, 32, 3), jnp.float32)

  def forward(p, s, x_):
    return network.apply(p, s, x_, train=True, dropout_key=jax.random.key(0), detach=True)

  logits, hidden, _ = jax.eval_shape(forward, params, state, x)
  return {name: h.shape for name, h in hidden.items()}, logits.shape[-1]


def direct_feedback_alignment(network: Network, *, dropout_rate: float = 0.0) -> base.LearningRule:
  """DFA on `network` as a `LearningRule`; `dropout_rate` (default 0) applies to fc1 in training, its mask enters
  δ_fc1."""

  def init(key, params):
    shapes, n_classes = hidden_shapes(network, params)
    keys = jax.random.split(key, len(shapes))
    return DFAState(
      {name: _local.uniform(k, (n_classes, shape[-1]), shape[-1]) for (name, shape), k in zip(shapes.items(), keys)}
    )

  def update(params, model_state, rule_state, batch: base.Batch, key):
    def surrogate(p):
      logits, hidden, new_state = network.apply(
        p, model_state, batch.images, train=True, dropout_key=key, dropout_rate=dropout_rate, detach=True
      )
      loss = base.cross_entropy(logits, batch.labels)
      n_classes = logits.shape[-1]
      e_NxK = (jax.nn.softmax(logits) - jax.nn.one_hot(batch.labels, n_classes)) / logits.shape[0]
      direct = dfa_surrogate(list(hidden.values()), e_NxK, [rule_state.feedback[name] for name in hidden])
      return loss + direct, (loss, logits, new_state)

    (_, (loss, logits, new_state)), grads = jax.value_and_grad(surrogate, has_aux=True)(params)
    return base.RuleUpdate(grads, new_state, rule_state, base.classification_metrics(loss, logits, batch.labels))

  return base.LearningRule(init, update, base.feedforward(network))
