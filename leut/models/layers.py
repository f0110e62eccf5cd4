"""Pure layer functions of the protocol CNN (NHWC), written so that a seed axis added by `vmap` stays fast.

The 3x3 convolution is an explicit patch extraction (nine shifted slices) followed by one matrix product.
Under `jax.vmap` over per-seed kernels the matrix product becomes a *batched* matrix product, which XLA:CPU
runs at matmul speed; a vmapped `lax.conv_general_dilated` becomes a grouped convolution instead, measured
several times slower on CPU (see `benchmarks/README.md`).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

BN_MOMENTUM = 0.1  # PyTorch's BatchNorm2d default (PROTOCOL §1.1, §7)
BN_EPS = 1e-5


def patches3x3(x_NxHxWxC: jax.Array) -> jax.Array:
  """Zero-padded 3x3 neighbourhoods, ordered (dy, dx, channel): returns `N x H x W x 9C`."""
  n, h, w, _ = x_NxHxWxC.shape
  padded = jnp.pad(x_NxHxWxC, ((0, 0), (1, 1), (1, 1), (0, 0)))
  shifted = [padded[:, dy:dy + h, dx:dx + w, :] for dy in range(3) for dx in range(3)]
  del n
  return jnp.concatenate(shifted, axis=-1)


def conv3x3(x_NxHxWxC: jax.Array, kernel_3x3xCxO: jax.Array) -> jax.Array:
  """Stride-1, padding-1 cross-correlation (PyTorch `Conv2d(k=3, padding=1)` semantics), as im2col + matmul."""
  c_in, c_out = kernel_3x3xCxO.shape[2], kernel_3x3xCxO.shape[3]
  cols = patches3x3(x_NxHxWxC)
  return jnp.einsum("nhwk,ko->nhwo", cols, kernel_3x3xCxO.reshape(9 * c_in, c_out))


def batch_norm_train(x_NxHxWxC, scale_C, bias_C, mean_C, var_C):
  """Training-mode BatchNorm: normalise by the biased batch variance, update running stats with the unbiased one.

  y = scale * (x - mu_B) / sqrt(var_B + eps) + bias;  running <- (1 - m) running + m batch  (m = 0.1).
  Returns `(y, (new_mean_C, new_var_C))`.
  """
  n = x_NxHxWxC.shape[0] * x_NxHxWxC.shape[1] * x_NxHxWxC.shape[2]
  mu_1x1x1xC = jnp.mean(x_NxHxWxC, axis=(0, 1, 2), keepdims=True)
  var_1x1x1xC = jnp.mean(jnp.square(x_NxHxWxC - mu_1x1x1xC), axis=(0, 1, 2), keepdims=True)
  y = _affine(x_NxHxWxC, mu_1x1x1xC, var_1x1x1xC, scale_C, bias_C)
  mu, var = mu_1x1x1xC.reshape(-1), var_1x1x1xC.reshape(-1)
  unbiased = var * (n / max(n - 1, 1))
  new_mean = (1 - BN_MOMENTUM) * mean_C + BN_MOMENTUM * jax.lax.stop_gradient(mu)
  new_var = (1 - BN_MOMENTUM) * var_C + BN_MOMENTUM * jax.lax.stop_gradient(unbiased)
  return y, (new_mean, new_var)


def batch_norm_eval(x_NxHxWxC, scale_C, bias_C, mean_C, var_C):
  """Evaluation-mode BatchNorm: running statistics only, so each example is normalised independently."""
  return _affine(x_NxHxWxC, mean_C, var_C, scale_C, bias_C)


def _affine(x_NxHxWxC, mean, var, scale_C, bias_C):
  as_1x1x1xC = lambda v: jnp.reshape(v, (1, 1, 1, -1))  # noqa: E731
  inv = jax.lax.rsqrt(as_1x1x1xC(var) + BN_EPS) * as_1x1x1xC(scale_C)
  return (x_NxHxWxC - as_1x1x1xC(mean)) * inv + as_1x1x1xC(bias_C)


def max_pool2(x_NxHxWxC: jax.Array) -> jax.Array:
  """2x2 max-pool with stride 2 (floor of odd sizes, as PyTorch)."""
  n, h, w, c = x_NxHxWxC.shape
  x = x_NxHxWxC[:, : h // 2 * 2, : w // 2 * 2, :]
  return x.reshape(n, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


def avg_pool2(x_NxHxWxC: jax.Array) -> jax.Array:
  """2x2 average pool with stride 2."""
  n, h, w, c = x_NxHxWxC.shape
  return x_NxHxWxC.reshape(n, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


def adaptive_avg_pool(x_NxHxWxC: jax.Array, size: int) -> jax.Array:
  """`adaptive_avg_pool2d(x, size)` for maps whose side is a multiple of `size` (every protocol resolution)."""
  n, h, w, c = x_NxHxWxC.shape
  if h % size or w % size:
    raise ValueError(f"adaptive_avg_pool: a {h}x{w} map does not divide into {size}x{size} windows; "
                     f"use an input resolution that is a multiple of {8 * size} px")
  return x_NxHxWxC.reshape(n, size, h // size, size, w // size, c).mean(axis=(2, 4))


def dropout(key, x: jax.Array, rate: float) -> jax.Array:
  """Inverted dropout: zero with probability `rate`, scale survivors by 1/(1-rate)."""
  if rate <= 0.0:
    return x
  keep = jax.random.bernoulli(key, 1.0 - rate, x.shape)
  return jnp.where(keep, x / (1.0 - rate), 0.0)
