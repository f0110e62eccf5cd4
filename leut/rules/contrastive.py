"""Contrastive self-supervised learning (SimCLR's NT-Xent on two augmented views), by backprop, read out linearly.

Chen, Kornblith, Norouzi & Hinton (2020), "A simple framework for contrastive learning of visual representations",
ICML. Each image of the batch is augmented twice (random crop, flip and brightness/contrast jitter), giving 2N
views; z_i is fc1 of view i (the representation that is scored), s_ij = z_iᵀz_j / (‖z_i‖‖z_j‖ τ), p(i) the other
view of i's image, and

    ℓ_i = −log [ exp(s_{i,p(i)}) / Σ_{k≠i} exp(s_ik) ],      L_NT-Xent = (1/2N) Σ_i ℓ_i

L trains every parameter below fc1 by backprop; no label reaches them. fc1 is its own projection (SimCLR adds an
MLP head; leut's parameter tree has none to add, and fc1 is the layer scored against IT). The readout fc2 is a
linear probe trained online by the cross-entropy of the labels on the detached fc1 of the first view, which is
what the "loss" and "accuracy" metrics report (NT-Xent is the metric "nt_xent").

Protocol optimiser: backprop's (clip 1.0, coupled L2 1e-4, Adam 1e-3, per-epoch cosine).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from leut.models.network import Network
from leut.rules import base
from leut.rules.backprop import protocol_optimizer  # noqa: F401  (contrastive learning trains with Adam as backprop)


def nt_xent(z_a_NxD: jax.Array, z_b_NxD: jax.Array, temperature: float) -> jax.Array:
  """SimCLR's normalised-temperature cross-entropy of the 2N views (z_a[n], z_b[n] are the views of image n)."""
  z = jnp.concatenate([z_a_NxD, z_b_NxD])
  z = z / jnp.maximum(jnp.linalg.norm(z, axis=-1, keepdims=True), 1e-12)
  n2 = z.shape[0]
  logits = (z @ z.T) / temperature
  logits = jnp.where(jnp.eye(n2, dtype=bool), -jnp.inf, logits)  # k ≠ i
  positive = (jnp.arange(n2) + n2 // 2) % n2
  return optax.softmax_cross_entropy_with_integer_labels(logits, positive).mean()


def two_views(key: jax.Array, x_NxHxWxC: jax.Array, *, pad: int = 4, jitter: float = 0.4):
  """Two independent augmentations of a (normalised) batch: flip, crop with zero padding, and per-image contrast a
  and brightness b, x ↦ a x + b with a ∈ [1 − jitter, 1 + jitter], b ∈ [−jitter, jitter]."""

  def view(k):
    k_flip, k_y, k_x, k_a, k_b = jax.random.split(k, 5)
    n, h, w, _ = x_NxHxWxC.shape
    flip = jax.random.bernoulli(k_flip, 0.5, (n,))
    x = jnp.where(flip[:, None, None, None], x_NxHxWxC[:, :, ::-1, :], x_NxHxWxC)
    padded = jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    dy = jax.random.randint(k_y, (n,), 0, 2 * pad + 1)
    dx = jax.random.randint(k_x, (n,), 0, 2 * pad + 1)
    x = jax.vmap(lambda img, y0, x0: jax.lax.dynamic_slice(img, (y0, x0, 0), (h, w, img.shape[-1])))(padded, dy, dx)
    a = jax.random.uniform(k_a, (n, 1, 1, 1), minval=1.0 - jitter, maxval=1.0 + jitter)
    b = jax.random.uniform(k_b, (n, 1, 1, 1), minval=-jitter, maxval=jitter)
    return a * x + b

  k_a, k_b = jax.random.split(key)
  return view(k_a), view(k_b)


def contrastive(network: Network, *, temperature: float = 0.5) -> base.LearningRule:
  """SimCLR-style contrastive learning on `network` as a `LearningRule` (module docstring).

  Args:
    temperature: τ of NT-Xent.
  """
  base.needs_blocks("contrastive", network)

  def init(key, params):
    del key, params
    return base.EmptyState()

  def update(params, model_state, rule_state, batch: base.Batch, key):
    view_a, view_b = two_views(key, batch.images)
    n = batch.images.shape[0]

    def loss_fn(p):
      _, acts, new_state = network.apply(p, model_state, jnp.concatenate([view_a, view_b]), train=True)
      fc1 = acts["fc1"]
      contrast = nt_xent(fc1[:n], fc1[n:], temperature)
      logits = network.readout(p, jax.lax.stop_gradient(fc1[:n]))
      ce = base.cross_entropy(logits, batch.labels)
      return contrast + ce, (contrast, ce, logits, new_state)

    (_, (contrast, ce, logits, new_state)), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    metrics = base.classification_metrics(ce, logits, batch.labels)
    metrics["nt_xent"] = contrast
    return base.RuleUpdate(grads, new_state, rule_state, metrics)

  return base.LearningRule(init, update, base.feedforward(network))
