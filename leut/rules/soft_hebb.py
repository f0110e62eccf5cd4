"""SoftHebb: Hebbian learning with a soft winner-take-all, layer-local and unsupervised, read out linearly.

Moraitis, Toichkin, Journé, Chua & Guo (2022), "SoftHebb: Bayesian inference in unsupervised Hebbian soft
winner-take-all networks", Neuromorph. Comput. Eng. 2:044017; Journé, Rodriguez, Guo & Moraitis (2023), "Hebbian
deep learning without feedback", ICLR. For every convolution W of the network (`Block.convs`, read with
`block.apply(..., taps=True)`), at every position of its input a, with x the 3x3xC input patch (the C-vector for a
1x1 convolution):

    u_o = ⟨w_o, x⟩                         the convolution's own drive of output channel o (before BatchNorm)
    y_o = softmax_o(u / τ)                  soft winner-take-all across the output channels
    Δw_o = mean_{n,h,w} y_o (x − u_o w_o)    (= patch_correlation(a, y) − w_o Σ y_o u_o, over the N·H·W positions)

The −y_o u_o w_o term (Oja-like) drives each ‖w_o‖ towards 1 and makes the rule a soft-competitive clustering of
input patches: only the layer's own input and drive enter (no error, no label, no signal from above).

Readout (like STDP and predictive coding): the conv kernels get only ΔW (plain SGD at `learning_rate` on −ΔW); fc1,
fc2 and the BatchNorm affine are trained by backprop of the cross-entropy with the conv kernels held fixed,
Adam(1e-3). One train-mode forward pass serves both.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from leut.models import layers
from leut.models.network import Network
from leut.rules import _local, base


def drive(pre_NxHxWxC: jax.Array, kernel: jax.Array) -> jax.Array:
  """u = W * a: the convolution's output before BatchNorm (3x3 'SAME', or 1x1)."""
  if kernel.shape[0] == 3:
    return layers.conv3x3(pre_NxHxWxC, kernel)
  return jnp.einsum("nhwc,co->nhwo", pre_NxHxWxC, kernel[0, 0])


def soft_hebb_update(pre_NxHxWxC: jax.Array, kernel: jax.Array, temperature: float) -> jax.Array:
  """ΔW = mean over positions of y_o (x − u_o w_o), y = softmax(u/τ) over output channels; shaped like `kernel`."""
  u = drive(pre_NxHxWxC, kernel)
  y = jax.nn.softmax(u / temperature, axis=-1)
  positions = u.shape[0] * u.shape[1] * u.shape[2]
  if kernel.shape[0] == 3:
    hebb = _local.patch_correlation(pre_NxHxWxC, y)
  else:
    hebb = jnp.einsum("nhwc,nhwo->co", pre_NxHxWxC, y)[None, None]
  decay_O = jnp.sum(y * u, axis=(0, 1, 2))
  return (hebb - kernel * decay_O[None, None, None, :]) / positions


def soft_hebb(network: Network, *, temperature: float = 0.1) -> base.LearningRule:
  """SoftHebb on every convolution of `network` as a `LearningRule` (equations in the module docstring).

  Args:
    network: a network of leut blocks (`model.name` 'cnn' or 'resnet'); a flax model is refused.
    temperature: τ of the soft winner-take-all (small: harder competition).
  The step size is the optimiser's `learning_rate`.
  """
  base.needs_blocks("soft_hebb", network)

  def init(key, params):
    del key, params
    return base.EmptyState()

  def update(params, model_state, rule_state, batch: base.Batch, key):
    del key

    def loss_fn(p):
      logits, taps, new_state = _local.forward_fixed_kernels(network, p, model_state, batch.images)
      pres = [(name, pre) for name, pre, _ in taps]
      return base.cross_entropy(logits, batch.labels), (logits, pres, new_state)

    (loss, (logits, pres, new_state)), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    for name, pre in pres:
      delta = soft_hebb_update(jax.lax.stop_gradient(pre), params[name]["kernel"], temperature)
      grads[name] = dict(grads[name], kernel=-delta)
    return base.RuleUpdate(grads, new_state, rule_state, base.classification_metrics(loss, logits, batch.labels))

  return base.LearningRule(init, update, base.feedforward(network))


def protocol_optimizer(
  *, steps_per_epoch: int, epochs: int, learning_rate: float = 0.01, head_learning_rate: float = 1e-3
) -> optax.GradientTransformation:
  """Conv kernels: plain SGD at `learning_rate` on −ΔW (SoftHebb only); fc1, fc2, BN affine: Adam(1e-3)."""
  del steps_per_epoch, epochs
  return _local.split_optimizer(
    {"conv": optax.sgd(learning_rate), "head": optax.adam(head_learning_rate), "bn": optax.adam(head_learning_rate)}
  )
