"""Optimisers of the published protocol, built from optax pieces (PROTOCOL §2.3–2.4, §7).

PyTorch semantics reproduced: `clip_grad_norm_` before the step (`clip_grad_norm_torch`); `weight_decay` in
Adam/SGD is *coupled* L2 (λθ added to the gradient before the moment estimates); `CosineAnnealingLR(T_max=epochs)`
stepped once per epoch.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax


def clip_grad_norm_torch(max_norm: float) -> optax.GradientTransformation:
  """PyTorch's `torch.nn.utils.clip_grad_norm_(params, max_norm)` as an optax transform:

      g ← g · min(1, max_norm / (‖g‖₂ + 1e-6)),   ‖g‖₂ the global L2 norm over every leaf

  `optax.clip_by_global_norm` scales by max_norm / ‖g‖ instead (no 1e-6), so the two differ slightly whenever
  clipping binds. Reference: PyTorch `torch/nn/utils/clip_grad.py` (`clip_coef = max_norm / (total_norm + 1e-6)`,
  clamped at 1.0 and always multiplied in).
  """

  def init_fn(params):
    del params
    return optax.ClipByGlobalNormState()  # optax's clip state (empty): checkpoints keep their structure

  def update_fn(updates, state, params=None):
    del params
    coef = jnp.minimum(max_norm / (optax.tree.norm(updates) + 1e-6), 1.0)
    return jax.tree.map(lambda g: (g * coef).astype(g.dtype), updates), state

  return optax.GradientTransformation(init_fn, update_fn)


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
  parts = [clip_grad_norm_torch(clip_norm)] if clip_norm else []
  if weight_decay:
    parts.append(optax.add_decayed_weights(weight_decay))
  parts += [optax.scale_by_adam(b1=b1, b2=b2, eps=eps), optax.scale_by_learning_rate(schedule)]
  return optax.chain(*parts)


def sgd_momentum_l2(
  schedule: optax.Schedule, *, momentum: float, weight_decay: float, clip_norm: float | None
) -> optax.GradientTransformation:
  """`torch.optim.SGD(momentum=μ, weight_decay=λ)` (no dampening, no Nesterov) after gradient clipping."""
  parts = [clip_grad_norm_torch(clip_norm)] if clip_norm else []
  if weight_decay:
    parts.append(optax.add_decayed_weights(weight_decay))
  parts += [optax.trace(decay=momentum, nesterov=False), optax.scale_by_learning_rate(schedule)]
  return optax.chain(*parts)
