"""Pure layer functions of the protocol CNN (NHWC), written so that a seed axis added by `vmap` stays fast.

`conv3x3` is one `lax.conv_general_dilated` per network (XLA:CPU's convolution, no 9x patch copy in memory) with a
hand-written VJP whose two adjoints are convolutions too (`conv3x3_input_grad`, `conv3x3_kernel_grad`). All three
are `custom_vmap`ped (`per_seed`) to run once per seed when vmapped over seeds, so each seed's convolution stays an
ordinary one: a vmapped `lax.conv_general_dilated` would be a grouped convolution, which XLA:CPU runs several
times slower (see `benchmarks/README.md`). Reverse mode only; `conv3x3_im2col` (nine shifted slices and one
matrix product) is the same function in plain JAX for forward-mode autodiff.

`conv_bn_relu_pool` is the training-mode block of the CNN, MaxPool2(ReLU(BN(conv(x)))) (or without the pool),
fused into one `jax.custom_vjp` with a hand-written backward, run once per seed in the same way; given a feedback
kernel B it sends the error to x through B instead of W (feedback alignment keeps the fused path).
`conv3x3_feedback` and `dense_feedback` are the unfused linear ops with that feedback path. Reverse mode only.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
from jax.custom_batching import custom_vmap

BN_MOMENTUM = 0.1  # PyTorch's BatchNorm2d default (PROTOCOL §1.1, §7)
BN_EPS = 1e-5


def patches3x3(x_NxHxWxC: jax.Array) -> jax.Array:
  """Zero-padded 3x3 neighbourhoods, ordered (dy, dx, channel): returns `N x H x W x 9C`."""
  n, h, w, _ = x_NxHxWxC.shape
  padded = jnp.pad(x_NxHxWxC, ((0, 0), (1, 1), (1, 1), (0, 0)))
  shifted = [padded[:, dy : dy + h, dx : dx + w, :] for dy in range(3) for dx in range(3)]
  del n
  return jnp.concatenate(shifted, axis=-1)


def conv3x3_im2col(x_NxHxWxC: jax.Array, kernel_3x3xCxO: jax.Array) -> jax.Array:
  """`conv3x3` as im2col + matmul in plain JAX (any autodiff mode; under vmap a batched matrix product)."""
  c_in, c_out = kernel_3x3xCxO.shape[2], kernel_3x3xCxO.shape[3]
  cols = patches3x3(x_NxHxWxC)
  return jnp.einsum("nhwk,ko->nhwo", cols, kernel_3x3xCxO.reshape(9 * c_in, c_out))


_CONV_DIMS = ("NHWC", "HWIO", "NHWC")


def conv3x3_direct(x_NxHxWxC: jax.Array, kernel_3x3xCxO: jax.Array) -> jax.Array:
  """`conv3x3` as one `lax.conv_general_dilated` (fast for one network; vmap it only through `per_seed`)."""
  return jax.lax.conv_general_dilated(x_NxHxWxC, kernel_3x3xCxO, (1, 1), ((1, 1), (1, 1)), dimension_numbers=_CONV_DIMS)


SEED_LOOP_PLATFORMS = ("cpu",)  # where `per_seed` runs one ordinary convolution per seed; elsewhere one batched


def per_seed(fn):
  """`fn` whose `vmap` runs `fn` once per batch entry (an unrolled loop) and stacks the results, on CPU.

  For functions built on `lax.conv_general_dilated`: each seed's convolution stays an ordinary one (XLA:CPU's
  direct convolution), where the vmapped one would be a grouped convolution. Unbatched arguments are shared by
  every entry. No autodiff rule of its own: wrap the pieces in a `jax.custom_vjp` (as `conv_bn_relu_pool` does).
  On the other platforms (GPU, TPU) the vmap is an ordinary one: a loop of S small convolutions would serialise an
  accelerator. The choice is `jax.lax.platform_dependent`, made when the program is lowered for its platform, not
  by asking the default backend while tracing, so one traced (or exported) program is right on every platform.
  """
  f = custom_vmap(fn)

  @f.def_vmap
  def _rule(axis_size, in_batched, *args):
    def batched(*a):
      return jax.vmap(fn, in_axes=tuple(0 if b else None for b in in_batched), axis_size=axis_size)(*a)

    def seed_loop(*a):
      outs = [fn(*[v[s] if b else v for v, b in zip(a, in_batched)]) for s in range(axis_size)]
      return jax.tree.map(lambda *v: jnp.stack(v), *outs)

    loops = {platform: seed_loop for platform in SEED_LOOP_PLATFORMS}
    out = jax.lax.platform_dependent(*args, **loops, default=batched)
    return out, jax.tree.map(lambda _: True, out)

  return f


def _pool_windows(x_NxHxWxC):
  """The 2x2 max-pool windows as `N x H/2 x 2 x W/2 x 2 x C` (odd trailing rows/columns dropped, as PyTorch)."""
  n, h, w, c = x_NxHxWxC.shape
  return x_NxHxWxC[:, : h // 2 * 2, : w // 2 * 2, :].reshape(n, h // 2, 2, w // 2, 2, c)


def _block_forward(x_NxHxWxC, kernel_3x3xCxO, scale_O, bias_O, *, pool: bool = True):
  """Forward of `conv_bn_relu_pool` for one network; also returns the conv output z for the backward."""
  z = conv3x3_direct(x_NxHxWxC, kernel_3x3xCxO)
  mu_1x1x1xO = jnp.mean(z, axis=(0, 1, 2), keepdims=True)
  var_1x1x1xO = jnp.mean(jnp.square(z - mu_1x1x1xO), axis=(0, 1, 2), keepdims=True)
  a = _affine(z, mu_1x1x1xO, var_1x1x1xO, scale_O, bias_O)
  # max commutes with the monotone ReLU: pool first, then ReLU the quarter-size map (same values).
  out = jax.nn.relu(_pool_windows(a).max(axis=(2, 4)) if pool else a)
  return out, z, mu_1x1x1xO.reshape(-1), var_1x1x1xO.reshape(-1)


def _block_backward(
  x_NxHxWxC, kernel_3x3xCxO, scale_O, bias_O, z_NxHxWxO, mu_O, var_O, g_out, feedback_3x3xCxO, *, pool: bool = True
):
  """Backward of `conv_bn_relu_pool` for one network, from the saved conv output z (BN, ReLU, pool recomputed).

  Pool + ReLU: g_a = g / (number of maxima in the window) at each window maximum of a that is > 0, else 0
  (what autodiff of `max_pool2(relu(.))` gives, ties split evenly); without the pool g_a = g · [a > 0].
  BN, with x̂ = (z - μ) / σ and m = N·H·W:  ∂bias = Σ g_a,  ∂scale = Σ g_a x̂,
  ∂z = scale / σ · (g_a - ∂bias / m - x̂ ∂scale / m).
  Conv: ∂x = ∂z ⋆ flip(B)ᵀ and ∂W = x ⋆ ∂z, two more direct convolutions; B = W for the true gradient, a fixed
  feedback kernel for feedback alignment.
  """
  n, h, w, c = z_NxHxWxO.shape
  as_1x1x1xO = lambda v: jnp.reshape(v, (1, 1, 1, c))  # noqa: E731
  rstd_1x1x1xO = jax.lax.rsqrt(as_1x1x1xO(var_O) + BN_EPS)
  a = _affine(z_NxHxWxO, as_1x1x1xO(mu_O), as_1x1x1xO(var_O), scale_O, bias_O)
  if pool:
    windows = _pool_windows(a)
    top = windows.max(axis=(2, 4), keepdims=True)
    hit = windows == top
    ties = jnp.sum(hit, axis=(2, 4), keepdims=True, dtype=z_NxHxWxO.dtype)
    g_windows = jnp.where(hit & (top > 0), g_out[:, :, None, :, None, :] / ties, 0.0)
    g_a = g_windows.reshape(n, h // 2 * 2, w // 2 * 2, c)
    if g_a.shape != z_NxHxWxO.shape:
      g_a = jnp.pad(g_a, ((0, 0), (0, h - g_a.shape[1]), (0, w - g_a.shape[2]), (0, 0)))
  else:
    g_a = jnp.where(a > 0, g_out, 0.0)
  x_hat = (z_NxHxWxO - as_1x1x1xO(mu_O)) * rstd_1x1x1xO
  g_bias = jnp.sum(g_a, axis=(0, 1, 2))
  g_scale = jnp.sum(g_a * x_hat, axis=(0, 1, 2))
  m = n * h * w
  g_z = (rstd_1x1x1xO * as_1x1x1xO(scale_O)) * (g_a - as_1x1x1xO(g_bias / m) - x_hat * as_1x1x1xO(g_scale / m))
  return _conv3x3_input_grad(g_z, feedback_3x3xCxO), _conv3x3_kernel_grad(x_NxHxWxC, g_z), g_scale, g_bias


# The transposes of `conv3x3_direct`, written as convolutions in its own canonical (NHWC, HWIO) form. Autodiff's
# transposes carry permuted dimension labels instead, which XLA:CPU canonicalises for its fast convolution outside
# loops but not inside a `while` body (a `scan` over training steps), where they were far slower
# (`benchmarks/README.md`).
def _conv3x3_input_grad(g_NxHxWxO, kernel_3x3xCxO):
  """∂x = g ⋆ flip(W)ᵀ: a 'SAME' correlation with the spatially flipped, in/out-swapped kernel."""
  return conv3x3_direct(g_NxHxWxO, jnp.transpose(kernel_3x3xCxO[::-1, ::-1], (0, 1, 3, 2)))


def _conv3x3_kernel_grad(x_NxHxWxC, g_NxHxWxO):
  """∂W[dy, dx, c, o] = Σ_{n,h,w} x_pad[n, h+dy, w+dx, c] g[n, h, w, o]: a correlation of x with g over (h, w),
  batch and feature roles swapped (x as C images of N channels, g as an H x W kernel from N to O channels)."""
  x_CxHxWxN = jnp.transpose(x_NxHxWxC, (3, 1, 2, 0))
  g_HxWxNxO = jnp.transpose(g_NxHxWxO, (1, 2, 0, 3))
  grad_Cx3x3xO = jax.lax.conv_general_dilated(
    x_CxHxWxN, g_HxWxNxO, (1, 1), ((1, 1), (1, 1)), dimension_numbers=_CONV_DIMS
  )
  return jnp.transpose(grad_Cx3x3xO, (1, 2, 0, 3))


conv3x3_input_grad = per_seed(_conv3x3_input_grad)
conv3x3_input_grad.__doc__ = """∂x of `conv3x3` for the output cotangent g: g ⋆ flip(W)ᵀ, once per seed under vmap."""
conv3x3_kernel_grad = per_seed(_conv3x3_kernel_grad)
conv3x3_kernel_grad.__doc__ = """∂W of `conv3x3`: Σ_{n,h,w} x_pad[n, h+dy, w+dx, c] g[n, h, w, o] (3 x 3 x C x O), once
per seed under vmap."""
_conv3x3_per_seed = per_seed(conv3x3_direct)


@jax.custom_vjp
def conv3x3(x_NxHxWxC: jax.Array, kernel_3x3xCxO: jax.Array) -> jax.Array:
  """Stride-1, padding-1 cross-correlation (PyTorch `Conv2d(k=3, padding=1, bias=False)` semantics):

      y[n, h, w, o] = Σ_{dy, dx, c} x_pad[n, h+dy, w+dx, c] W[dy, dx, c, o]

  One direct convolution per seed under vmap; reverse-mode autodiff through `conv3x3_input_grad` and
  `conv3x3_kernel_grad` (no `jvp`: use `conv3x3_im2col`).
  """
  return _conv3x3_per_seed(x_NxHxWxC, kernel_3x3xCxO)


def _conv3x3_fwd(x_NxHxWxC, kernel_3x3xCxO):
  return _conv3x3_per_seed(x_NxHxWxC, kernel_3x3xCxO), (x_NxHxWxC, kernel_3x3xCxO)


def _conv3x3_bwd(residuals, g_NxHxWxO):
  x_NxHxWxC, kernel_3x3xCxO = residuals
  return conv3x3_input_grad(g_NxHxWxO, kernel_3x3xCxO), conv3x3_kernel_grad(x_NxHxWxC, g_NxHxWxO)


conv3x3.defvjp(_conv3x3_fwd, _conv3x3_bwd)


def _fused_block(pool: bool, with_feedback: bool):
  """The fused block as a `jax.custom_vjp`, run once per seed under vmap; with a feedback kernel as 5th argument."""
  forward = per_seed(functools.partial(_block_forward, pool=pool))
  backward = per_seed(functools.partial(_block_backward, pool=pool))

  def value(x, kernel, scale, bias, *feedback):
    out, _, mu_O, var_O = forward(x, kernel, scale, bias)
    return out, mu_O, var_O

  def fwd(x, kernel, scale, bias, *feedback):
    out, z, mu_O, var_O = forward(x, kernel, scale, bias)
    return (out, mu_O, var_O), (x, kernel, scale, bias, z, mu_O, var_O) + feedback

  def bwd(residuals, cotangents):
    g_out, _, _ = cotangents  # the batch statistics' cotangents: constants, see `conv_bn_relu_pool`
    if with_feedback:
      *saved, feedback = residuals
      return backward(*saved, g_out, feedback) + (jnp.zeros_like(feedback),)
    return backward(*residuals, g_out, residuals[1])

  fused = jax.custom_vjp(value)
  fused.defvjp(fwd, bwd)
  return fused


_FUSED = {(pool, fb): _fused_block(pool, fb) for pool in (True, False) for fb in (True, False)}


def conv_bn_relu_pool(
  x_NxHxWxC: jax.Array,
  kernel_3x3xCxO: jax.Array,
  scale_O: jax.Array,
  bias_O: jax.Array,
  feedback_3x3xCxO: jax.Array | None = None,
  *,
  pool: bool = True,
):
  """Training-mode block MaxPool2(ReLU(BN_batch(conv3x3(x)))), fused, for reverse-mode autodiff and seed vmaps.

      z = W * x;  y = scale · (z - μ_B) / sqrt(σ²_B + eps) + bias;  out = MaxPool2(ReLU(y))   (ReLU(y) if not pool)

  with μ_B, σ²_B the batch mean and biased variance per channel. Returns `(out, μ_B, σ²_B)`; the statistics are
  for the running-average update and count as constants (their cotangents are ignored, as `batch_norm_train`
  stops their gradient). Equal to `max_pool2(relu(batch_norm_train(conv3x3(x, kernel), ...)))` and its gradient
  to float32 rounding. With `feedback_3x3xCxO` (feedback alignment) the error reaches x through that kernel
  instead of W (∂x = ∂z ⋆ flip(B)ᵀ; ∂W unchanged; B gets a zero cotangent). `jax.custom_vjp`: no forward-mode
  autodiff (use the unfused layers for `jvp`).
  """
  args = (x_NxHxWxC, kernel_3x3xCxO, scale_O, bias_O)
  if feedback_3x3xCxO is None:
    return _FUSED[(pool, False)](*args)
  return _FUSED[(pool, True)](*args, feedback_3x3xCxO)


@jax.custom_vjp
def conv3x3_feedback(x_NxHxWxC: jax.Array, kernel_3x3xCxO: jax.Array, feedback_3x3xCxO: jax.Array) -> jax.Array:
  """`conv3x3(x, kernel)` whose backward pass sends the error to x through `feedback` instead of `kernel`
  (feedback alignment, Lillicrap et al. 2016): ∂x = conv3x3_input_grad(δ, B), ∂W = conv3x3_kernel_grad(x, δ)."""
  return conv3x3(x_NxHxWxC, kernel_3x3xCxO)


def _conv3x3_feedback_fwd(x, kernel, feedback):
  return conv3x3(x, kernel), (x, feedback)


def _conv3x3_feedback_bwd(residuals, delta_NxHxWxO):
  x, feedback = residuals
  return conv3x3_input_grad(delta_NxHxWxO, feedback), conv3x3_kernel_grad(x, delta_NxHxWxO), jnp.zeros_like(feedback)


conv3x3_feedback.defvjp(_conv3x3_feedback_fwd, _conv3x3_feedback_bwd)


@jax.custom_vjp
def dense_feedback(x_NxI: jax.Array, kernel_IxO: jax.Array, feedback_IxO: jax.Array) -> jax.Array:
  """`x @ kernel` whose backward pass sends the error to x as δ Bᵀ instead of δ Wᵀ (feedback alignment)."""
  return x_NxI @ kernel_IxO


def _dense_feedback_fwd(x, kernel, feedback):
  return x @ kernel, (x, feedback)


def _dense_feedback_bwd(residuals, delta_NxO):
  x, feedback = residuals
  return delta_NxO @ feedback.T, x.T @ delta_NxO, jnp.zeros_like(feedback)


dense_feedback.defvjp(_dense_feedback_fwd, _dense_feedback_bwd)


def running_stats(mean_C, var_C, batch_mean_C, batch_var_C, n: int):
  """running <- (1 - m) running + m batch (m = 0.1), the variance unbiased by n / (n - 1) (PyTorch)."""
  unbiased = batch_var_C * (n / max(n - 1, 1))
  new_mean = (1 - BN_MOMENTUM) * mean_C + BN_MOMENTUM * jax.lax.stop_gradient(batch_mean_C)
  new_var = (1 - BN_MOMENTUM) * var_C + BN_MOMENTUM * jax.lax.stop_gradient(unbiased)
  return new_mean, new_var


@functools.partial(jax.tree_util.register_dataclass, data_fields=["mean", "var"], meta_fields=["count"])
@dataclasses.dataclass(frozen=True)
class BatchStats:
  """Per-channel statistics of one training batch: mean, biased variance, and the count m = N·H·W behind them
  (static: it sets the n/(n-1) unbiasing of the running variance)."""

  mean: jax.Array
  var: jax.Array
  count: int


def batch_stats(x_NxHxWxC: jax.Array) -> BatchStats:
  """μ_B = mean over (N, H, W), σ²_B = mean of (x - μ_B)² (biased), as BatchNorm normalises with in training."""
  mu_1x1x1xC = jnp.mean(x_NxHxWxC, axis=(0, 1, 2), keepdims=True)
  var_1x1x1xC = jnp.mean(jnp.square(x_NxHxWxC - mu_1x1x1xC), axis=(0, 1, 2), keepdims=True)
  n = x_NxHxWxC.shape[0] * x_NxHxWxC.shape[1] * x_NxHxWxC.shape[2]
  return BatchStats(mu_1x1x1xC.reshape(-1), var_1x1x1xC.reshape(-1), n)


def running_update(running: dict, stats: BatchStats) -> dict:
  """`{"mean", "var"}` running statistics after one batch (`running_stats`, PyTorch's momentum 0.1)."""
  mean, var = running_stats(running["mean"], running["var"], stats.mean, stats.var, stats.count)
  return {"mean": mean, "var": var}


def batch_norm_batch(x_NxHxWxC, scale_C, bias_C) -> tuple[jax.Array, BatchStats]:
  """Training-mode BatchNorm normalising by the batch statistics: returns `(y, BatchStats)`."""
  stats = batch_stats(x_NxHxWxC)
  return _affine(x_NxHxWxC, stats.mean, stats.var, scale_C, bias_C), stats


def batch_norm_train(x_NxHxWxC, scale_C, bias_C, mean_C, var_C):
  """Training-mode BatchNorm: normalise by the biased batch variance, update running stats with the unbiased one.

  y = scale * (x - mu_B) / sqrt(var_B + eps) + bias;  running <- (1 - m) running + m batch  (m = 0.1).
  Returns `(y, (new_mean_C, new_var_C))`.
  """
  y, stats = batch_norm_batch(x_NxHxWxC, scale_C, bias_C)
  return y, running_stats(mean_C, var_C, stats.mean, stats.var, stats.count)


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
    raise ValueError(
      f"adaptive_avg_pool: a {h}x{w} map does not divide into {size}x{size} windows; "
      f"use an input resolution that is a multiple of {8 * size} px"
    )
  return x_NxHxWxC.reshape(n, size, h // size, size, w // size, c).mean(axis=(2, 4))


def dropout(key, x: jax.Array, rate: float) -> jax.Array:
  """Inverted dropout: zero with probability `rate`, scale survivors by 1/(1-rate)."""
  if rate <= 0.0:
    return x
  keep = jax.random.bernoulli(key, 1.0 - rate, x.shape)
  return jnp.where(keep, x / (1.0 - rate), 0.0)
