"""The protocol CNN (PROTOCOL §1) at any depth, as a `Network` of pure functions with explicit BatchNorm state.

    conv_k = Pool_k(ReLU(BN_k(W_k * conv_{k-1})))   k = 1..N;  3x3, padding 1, no bias; Pool_k = MaxPool2 or identity
    fc1    = ReLU(W_fc1 · flatten(AdaptiveAvgPool4(conv_N)) + b)      fc_dim units
    logits = W_fc2 · Dropout(fc1) + b                                   n_classes

The protocol is N = 3 blocks of 32/64/128 channels, each pooled. `pool_after` chooses which blocks end in a 2x2
max-pool; by default at most three, spaced evenly and always after the last block (`default_pool_after`), so that
a 32-px training image ends on a 4x4 map (fc1 then reads the map as the protocol does) and every evaluation size
that is a multiple of 32 px divides into fc1's 4x4 adaptive pool.

Parameters `conv1..convN` {kernel (3 x 3 x C_in x C_out) [, bias]}, `bn1..bnN` {scale, bias}, `fc1`, `fc2`
{kernel, bias}; model state `bn1..bnN` {mean, var}. Training blocks take the fused per-seed path
`layers.conv_bn_relu_pool` (with a feedback kernel for feedback alignment); evaluation, `taps` and a custom
`conv_impl` take the unfused layers.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp

from leut.models import layers
from leut.models.network import Block, BlockOut, Conv, LinearLayer, Network, sequential

PROTOCOL_WIDTHS = (32, 64, 128)
MAX_POOLS = 3  # 32 px -> 4 px


def default_pool_after(n_blocks: int) -> tuple[int, ...]:
  """Blocks (1-based) followed by a 2x2 max-pool: min(N, 3) pools spaced evenly, the last one after block N.

  Block i pools when ⌊i P / N⌋ > ⌊(i-1) P / N⌋, P = min(N, 3): N = 3 → (1, 2, 3) (the protocol), N = 5 → (2, 4, 5),
  N = 8 → (3, 6, 8), N = 1 → (1,).
  """
  p = min(n_blocks, MAX_POOLS)
  return tuple(i for i in range(1, n_blocks + 1) if (i * p) // n_blocks > ((i - 1) * p) // n_blocks)


def check_pool_after(pool_after, n_blocks: int) -> tuple[int, ...]:
  pools = tuple(sorted(int(i) for i in pool_after))
  if len(set(pools)) != len(pools) or any(not 1 <= i <= n_blocks for i in pools):
    raise ValueError(
      f"model.pool_after={tuple(pool_after)}: give distinct block numbers between 1 and {n_blocks} (or None for "
      f"the default {default_pool_after(n_blocks)})"
    )
  if len(pools) > MAX_POOLS:
    raise ValueError(
      f"model.pool_after={tuple(pool_after)}: {len(pools)} pools shrink a 32-px training image below fc1's 4x4 "
      f"pool; use at most {MAX_POOLS}"
    )
  return pools


def _uniform(key, shape, bound):
  return jax.random.uniform(key, shape, jnp.float32, -bound, bound)


def conv_kernel(key, shape: tuple[int, ...], conv_init: str) -> jax.Array:
  """A conv kernel (kh x kw x C_in x C_out): 'torch_default' U(±1/sqrt(fan_in)) (PyTorch's
  `kaiming_uniform_(a=sqrt(5))`, PROTOCOL §1.2) or 'kaiming_normal' N(0, 2/fan_in) (the published FA and STDP)."""
  fan_in = shape[0] * shape[1] * shape[2]
  if conv_init == "torch_default":
    return _uniform(key, shape, 1.0 / math.sqrt(fan_in))
  if conv_init == "kaiming_normal":
    return jax.random.normal(key, shape) * math.sqrt(2.0 / fan_in)
  raise ValueError(f"model.conv_init: unknown {conv_init!r}; use 'torch_default' or 'kaiming_normal'")


def dense_init(keys, fan_in: int, fan_out: int) -> dict:
  """PyTorch's default `nn.Linear` initialisation: kernel and bias ~ U(±1/sqrt(fan_in))."""
  return {
    "kernel": _uniform(keys[0], (fan_in, fan_out), 1 / math.sqrt(fan_in)),
    "bias": _uniform(keys[1], (fan_out,), 1 / math.sqrt(fan_in)),
  }


def dense(params, name: str, x_NxI: jax.Array, feedback=None) -> jax.Array:
  """x W + b for the dense layer `name`; its input error goes through `feedback[name]` when given."""
  kernel = params[name]["kernel"]
  z = layers.dense_feedback(x_NxI, kernel, feedback[name]) if feedback and name in feedback else x_NxI @ kernel
  return z + params[name]["bias"][None, :]


def make_head(pool_size: int) -> tuple[Callable, Callable]:
  """(head, readout): fc1 = ReLU(fc1(flatten(AdaptiveAvgPool(pool_size)(map)))), logits = fc2(fc1)."""

  def head(params, map_NxHxWxC, *, feedback=None):
    pooled = layers.adaptive_avg_pool(map_NxHxWxC, pool_size)
    return jax.nn.relu(dense(params, "fc1", pooled.reshape(pooled.shape[0], -1), feedback))

  def readout(params, fc1_NxD, *, feedback=None):
    return dense(params, "fc2", fc1_NxD, feedback)

  return head, readout


def conv_bn_block(name: str, conv: str, bn: str, c_in: int, c_out: int, *, pool: bool, conv_impl=None) -> Block:
  """Pool(ReLU(BN(conv(x)))) as a `Block` (Pool = MaxPool2 or identity); see `Block` for the arguments."""

  def apply(params, norm_stats, x, *, train: bool, feedback=None, taps: bool = False) -> BlockOut:
    kernel, fb = params[conv]["kernel"], (feedback or {}).get(conv)
    conv_bias = params[conv].get("bias")
    scale, shift = params[bn]["scale"], params[bn]["bias"]
    if train and not taps and conv_impl is None:
      out, mu, var = layers.conv_bn_relu_pool(x, kernel, scale, shift, fb, pool=pool)
      if conv_bias is not None:  # BN removes a per-channel shift; only the batch mean sees it (∂bias = 0, as torch)
        mu = mu + conv_bias
      return BlockOut(out, {bn: layers.BatchStats(mu, var, x.shape[0] * x.shape[1] * x.shape[2])}, ())
    if conv_impl is not None:
      if fb is not None:
        raise ValueError(f"{name}: a network built with conv_impl has no feedback path (build it without conv_impl)")
      z = conv_impl(x, kernel)
    else:
      z = layers.conv3x3(x, kernel) if fb is None else layers.conv3x3_feedback(x, kernel, fb)
    if conv_bias is not None:
      z = z + conv_bias.reshape(1, 1, 1, -1)
    if train:
      y, stats = layers.batch_norm_batch(z, scale, shift)
      batch = {bn: stats}
    else:
      y, batch = layers.batch_norm_eval(z, scale, shift, norm_stats[bn]["mean"], norm_stats[bn]["var"]), {}
    fire = jax.nn.relu(y)
    return BlockOut(layers.max_pool2(fire) if pool else fire, batch, ((conv, x, fire),) if taps else ())

  return Block(name, apply, (conv, bn), (Conv(conv, bn, 3),), c_in, c_out, 2 if pool else 1)


@functools.cache
def network(
  widths: tuple[int, ...] = PROTOCOL_WIDTHS,
  fc_dim: int = 512,
  n_classes: int = 10,
  pool_after: tuple[int, ...] | None = None,
  pool_size: int = 4,
  in_channels: int = 3,
  conv_impl: Callable | None = None,
) -> Network:
  """The CNN with len(widths) conv blocks as a `Network` (the same arguments give the same object).

  Args:
    widths: channels of conv1..convN (1 <= N; 8 blocks fit 32 px with the default pooling).
    pool_after: blocks followed by a 2x2 max-pool (1-based), None for `default_pool_after(N)`.
    conv_impl: `(x, kernel) -> y` replacing the per-seed 3x3 convolution in every block (unfused; benchmarks).
  """
  widths = tuple(int(w) for w in widths)
  if not widths:
    raise ValueError("model.widths: give at least one conv block, e.g. (32, 64, 128)")
  pools = default_pool_after(len(widths)) if pool_after is None else check_pool_after(pool_after, len(widths))
  names = tuple(f"conv{i}" for i in range(1, len(widths) + 1))
  blocks, c_in = [], in_channels
  for i, (name, c_out) in enumerate(zip(names, widths), start=1):
    blocks.append(conv_bn_block(name, name, f"bn{i}", c_in, c_out, pool=i in pools, conv_impl=conv_impl))
    c_in = c_out

  def init(key, *, conv_init: str = "torch_default", conv_bias: bool = False):
    """Parameters and BatchNorm state; the same key gives bit-identical weights whatever the rule. BatchNorm starts
    at scale 1, bias 0, running mean 0, running var 1; a conv bias (the published FA) starts at 0."""
    keys = jax.random.split(key, len(widths) + 4)
    params, state = {}, {}
    for k, block in enumerate(blocks):
      params[block.convs[0].name] = {
        "kernel": conv_kernel(keys[k], (3, 3, block.in_channels, block.out_channels), conv_init)
      }
      if conv_bias:
        params[block.convs[0].name]["bias"] = jnp.zeros((block.out_channels,))
      bn = block.convs[0].bn
      params[bn] = {"scale": jnp.ones((block.out_channels,)), "bias": jnp.zeros((block.out_channels,))}
      state[bn] = {"mean": jnp.zeros((block.out_channels,)), "var": jnp.ones((block.out_channels,))}
    n = len(widths)
    params["fc1"] = dense_init(keys[n : n + 2], widths[-1] * pool_size * pool_size, fc_dim)
    params["fc2"] = dense_init(keys[n + 2 : n + 4], fc_dim, n_classes)
    return params, state

  head, readout = make_head(pool_size)
  linear = [LinearLayer(name, "conv", (name, "kernel")) for name in names]
  linear += [LinearLayer(name, "dense", (name, "kernel")) for name in ("fc1", "fc2")]
  return sequential("cnn", init, blocks, head, readout, linear)


# --- the protocol CNN as plain functions (notebooks, tests, checkpoint readers) ----------------------------------

CONV_LAYERS = ("conv1", "conv2", "conv3")
FEATURE_LAYERS = CONV_LAYERS + ("fc1",)


def init(key, *, widths=PROTOCOL_WIDTHS, fc_dim: int = 512, conv_init: str = "torch_default", **kw):
  """`network(widths, fc_dim, **kw).init(key, conv_init=conv_init)`."""
  return network(tuple(widths), fc_dim, **kw).init(key, conv_init=conv_init)


def for_params(params) -> Network:
  """The CNN (default pooling) whose parameters `params` are: depth, widths and fc sizes read from their shapes."""
  n = sum(1 for k in params if k.startswith("conv"))
  widths = tuple(int(params[f"conv{i}"]["kernel"].shape[-1]) for i in range(1, n + 1))
  fc_dim, n_classes = (int(d) for d in params["fc2"]["kernel"].shape)
  return network(widths, fc_dim, n_classes)


def apply(params, model_state, x_NxHxWx3, *, train: bool, **kw):
  """`Network.apply` of the CNN that `params` belong to: `(logits, acts, new_model_state)`."""
  return for_params(params).apply(params, model_state, x_NxHxWx3, train=train, **kw)


def features(params, model_state, x_NxHxWx3) -> dict[str, jax.Array]:
  """Evaluation-mode layer features `{conv1: NxC1, ..., fc1: NxD}` (running BN statistics)."""
  return for_params(params).features(params, model_state, x_NxHxWx3)
