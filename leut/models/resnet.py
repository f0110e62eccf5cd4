"""A CIFAR-style residual network (He, Zhang, Ren & Sun 2016, "Deep residual learning for image recognition",
CVPR, §4.2) as a `Network` with explicit BatchNorm state, sharing the protocol CNN's convolution, head and readout.

    conv1  = ReLU(BN(W * x))                                           the stem, widths[0] channels
    res_u  = ReLU(BN_b(W_b * ReLU(BN_a(W_a * h))) + skip(h)),   h = Pool(res_{u-1})
    skip(h) = h, or BN_s(W_s · h) (a 1x1 convolution) when the channel count changes
    fc1, logits as in the protocol CNN (AdaptiveAvgPool4 → fc1 → ReLU → Dropout → fc2)

Stage s (s = 1..len(widths)) has `units_per_stage` units of widths[s-1] channels. The first unit of stages 2, 3
and 4 halves the map with a 2x2 max-pool of its input (Pool above; He et al. use a stride-2 convolution instead),
so every convolution is the stride-1 3x3 convolution of the protocol CNN (the per-seed fast path, the same local
rules) and a 32-px image ends on an 8x8 map with three stages. Depth = 2 + 2 · stages · units_per_stage layers.

Parameters: `conv1`, `bn1` (stem); `res{u}_conv_a`, `res{u}_bn_a`, `res{u}_conv_b`, `res{u}_bn_b` and, for a
projection, `res{u}_conv_skip` (1 x 1 x C_in x C_out), `res{u}_bn_skip`; `fc1`, `fc2`. Feature layers: conv1,
res1 … resM (unit outputs), fc1.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from leut.models import cnn, layers
from leut.models.network import Block, BlockOut, Conv, LinearLayer, Network, sequential

MAX_DOWNSAMPLES = 3


def _conv(params, conv: Conv, x, feedback):
  kernel, fb = params[conv.name]["kernel"], (feedback or {}).get(conv.name)
  if conv.size == 3:
    z = layers.conv3x3(x, kernel) if fb is None else layers.conv3x3_feedback(x, kernel, fb)
  else:  # 1x1: a dense map over channels at every position
    flat = x.reshape(-1, x.shape[-1])
    z = (flat @ kernel[0, 0] if fb is None else layers.dense_feedback(flat, kernel[0, 0], fb[0, 0])).reshape(
      x.shape[:-1] + (kernel.shape[-1],)
    )
  if "bias" in params[conv.name]:
    z = z + params[conv.name]["bias"].reshape(1, 1, 1, -1)
  return z


def _conv_bn(params, norm_stats, conv: Conv, x, *, train, feedback):
  """BN(conv(x)) and `{bn: BatchStats}` in training (batch statistics), `{}` in evaluation (`norm_stats`)."""
  z = _conv(params, conv, x, feedback)
  scale, shift = params[conv.bn]["scale"], params[conv.bn]["bias"]
  if train:
    y, stats = layers.batch_norm_batch(z, scale, shift)
    return y, {conv.bn: stats}
  return layers.batch_norm_eval(z, scale, shift, norm_stats[conv.bn]["mean"], norm_stats[conv.bn]["var"]), {}


def residual_unit(u: int, c_in: int, c_out: int, *, downsample: bool) -> Block:
  name = f"res{u}"
  conv_a, conv_b = Conv(f"{name}_conv_a", f"{name}_bn_a"), Conv(f"{name}_conv_b", f"{name}_bn_b")
  skip = Conv(f"{name}_conv_skip", f"{name}_bn_skip", 1) if c_in != c_out else None
  convs = (conv_a, conv_b) + ((skip,) if skip else ())

  def apply(params, norm_stats, x, *, train: bool, feedback=None, taps: bool = False) -> BlockOut:
    h = layers.max_pool2(x) if downsample else x
    kw = dict(train=train, feedback=feedback)
    y_a, stats = _conv_bn(params, norm_stats, conv_a, h, **kw)
    fire_a = jax.nn.relu(y_a)
    y_b, stats_b = _conv_bn(params, norm_stats, conv_b, fire_a, **kw)
    stats = {**stats, **stats_b}
    found = [(conv_a.name, h, fire_a), (conv_b.name, fire_a, y_b)]
    shortcut = h
    if skip is not None:
      shortcut, stats_s = _conv_bn(params, norm_stats, skip, h, **kw)
      stats = {**stats, **stats_s}
      found.append((skip.name, h, shortcut))
    out = jax.nn.relu(y_b + shortcut)
    # STDP's post-synaptic rate of each conv is its own rectified, normalised response ReLU(BN(conv(pre)))
    tapped = tuple((n, pre, post if n == conv_a.name else jax.nn.relu(post)) for n, pre, post in found) if taps else ()
    return BlockOut(out, stats, tapped)

  params = tuple(p for c in convs for p in (c.name, c.bn))
  return Block(name, apply, params, convs, c_in, c_out, 2 if downsample else 1)


@functools.cache
def network(
  widths: tuple[int, ...] = cnn.PROTOCOL_WIDTHS,
  units_per_stage: int = 1,
  fc_dim: int = 512,
  n_classes: int = 10,
  pool_size: int = 4,
  in_channels: int = 3,
) -> Network:
  """The residual network with len(widths) stages of `units_per_stage` units as a `Network` (cached by arguments)."""
  widths = tuple(int(w) for w in widths)
  if not widths or units_per_stage < 1:
    raise ValueError(
      f"model.widths={widths}, model.units_per_stage={units_per_stage}: a resnet needs at least one stage width "
      "and one unit per stage"
    )
  blocks = [cnn.conv_bn_block("conv1", "conv1", "bn1", in_channels, widths[0], pool=False)]
  c_in, u = widths[0], 0
  for s, c_out in enumerate(widths):
    for j in range(units_per_stage):
      u += 1
      blocks.append(residual_unit(u, c_in, c_out, downsample=(j == 0 and 1 <= s <= MAX_DOWNSAMPLES)))
      c_in = c_out
  convs = [(c, b) for b in blocks for c in b.convs]

  def init(key, *, conv_init: str = "torch_default", conv_bias: bool = False):
    """He et al.'s structure with leut's initialisations (`cnn.conv_kernel`): BN at scale 1, bias 0."""
    keys = jax.random.split(key, len(convs) + 4)
    params, state = {}, {}
    for k, (conv, block) in zip(keys, convs):
      c_in_ = block.in_channels if conv.name in (block.convs[0].name, f"{block.name}_conv_skip") else block.out_channels
      params[conv.name] = {"kernel": cnn.conv_kernel(k, (conv.size, conv.size, c_in_, block.out_channels), conv_init)}
      if conv_bias:
        params[conv.name]["bias"] = jnp.zeros((block.out_channels,))
      params[conv.bn] = {"scale": jnp.ones((block.out_channels,)), "bias": jnp.zeros((block.out_channels,))}
      state[conv.bn] = {"mean": jnp.zeros((block.out_channels,)), "var": jnp.ones((block.out_channels,))}
    n = len(convs)
    params["fc1"] = cnn.dense_init(keys[n : n + 2], widths[-1] * pool_size * pool_size, fc_dim)
    params["fc2"] = cnn.dense_init(keys[n + 2 : n + 4], fc_dim, n_classes)
    return params, state

  head, readout = cnn.make_head(pool_size)
  linear = [LinearLayer(c.name, "conv", (c.name, "kernel")) for c, _ in convs]
  linear += [LinearLayer(name, "dense", (name, "kernel")) for name in ("fc1", "fc2")]
  return sequential("resnet", init, blocks, head, readout, linear)
