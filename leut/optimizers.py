"""Optimisers of the published protocol, built from optax pieces (PROTOCOL §2.3–2.4, §7).

PyTorch semantics reproduced: `clip_grad_norm_` before the step; `weight_decay` in Adam/SGD is *coupled* L2
(λθ added to the gradient before the moment estimates); `CosineAnnealingLR(T_max=epochs)` stepped once per epoch.
"""

from __future__ import annotations

import jax.numpy as jnp
import optax


def epoch_cosine(base_lr: float, steps_per_epoch: int, epochs: int) -> optax.Schedule:
  """η(step) = ½ η₀ (1 + cos(π e / E)),  e = ⌊step / steps_per_epoch⌋ (constant within an epoch)."""

  def schedule(count):
    epoch = jnp.floor_divide(count, steps_per_epoch)
    return 0.5 * base_lr * (1.0 + jnp.cos(jnp.pi * epoch / epochs))

  return schedule


def adam_l2(
  schedule: optax.Schedule,
  *,
  weight_decay: float,
  clip_norm: float | None,
  b1: float = 0.9,
  b2: float = 0.999,
  eps: float = 1e-8,
) -> optax.GradientTransformation:
  """`torch.optim.Adam(weight_decay=λ)` after `clip_grad_norm_(max_norm)`."""
  parts = [optax.clip_by_global_norm(clip_norm)] if clip_norm else []
  if weight_decay:
    parts.append(optax.add_decayed_weights(weight_decay))
  parts += [optax.scale_by_adam(b1=b1, b2=b2, eps=eps), optax.scale_by_learning_rate(schedule)]
  return optax.chain(*parts)


def sgd_momentum_l2(
  schedule: optax.Schedule, *, momentum: float, weight_decay: float, clip_norm: float | None
) -> optax.GradientTransformation:
  """`torch.optim.SGD(momentum=μ, weight_decay=λ)` (no dampening, no Nesterov) after gradient clipping."""
  parts = [optax.clip_by_global_norm(clip_norm)] if clip_norm else []
  if weight_decay:
    parts.append(optax.add_decayed_weights(weight_decay))
  parts += [optax.trace(decay=momentum, nesterov=False), optax.scale_by_learning_rate(schedule)]
  return optax.chain(*parts)
