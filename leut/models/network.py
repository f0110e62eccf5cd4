"""The one interface through which learning rules, training and scoring reach a network (see `leut.models`).

A `Network` is a NamedTuple of pure functions and static facts, built once from `config.model`:

    params, model_state = net.init(key)                       # params: what learning changes; state: BN statistics
    logits, acts, new_state = net.apply(params, model_state, x, train=True, dropout_key=k, dropout_rate=0.3)
    feats = net.features(params, model_state, x)              # evaluation mode: {layer: N x U}

and, for leut's own networks, the stack it is made of: `net.blocks` (each a `Block`), `net.head` (fc1 features
from the last map) and `net.readout` (fc2 logits), so that local rules can run inference over the blocks or read
each convolution's own input and output. A user's flax module is a `Network` without blocks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax

from leut.models import layers


class Conv(NamedTuple):
  """One convolution of a block: its kernel's key in params, its BatchNorm's key, and its kernel side (3 or 1)."""

  name: str
  bn: str
  size: int = 3


class BlockOut(NamedTuple):
  out: jax.Array  # the block's output map
  batch_stats: dict  # BatchNorm name -> `layers.BatchStats` of this batch (training mode), else {}
  taps: tuple  # with taps=True: ((conv name, pre, post), ...), pre = the conv's input, post = ReLU(BN(conv(pre)))


class Block(NamedTuple):
  """A named stage of the network: `apply(params, norm_stats, x, *, train, feedback=None, taps=False) -> BlockOut`.

  `norm_stats` are the BatchNorm statistics used when `train` is False (the running statistics in evaluation, a
  frozen batch's statistics in predictive coding's BN*); with `train` the block normalises by the batch and
  returns that batch's statistics. `feedback` maps a linear op's name (a conv kernel's key) to the kernel its
  error is sent back through instead of its own (feedback alignment). `taps` asks for each convolution's own input
  and rectified, normalised output (STDP's pre- and post-synaptic activity), which the fused training path does
  not materialise.
  """

  name: str
  apply: Callable
  param_names: tuple[str, ...]  # top-level params keys the block owns (kernels and BatchNorm affines)
  convs: tuple[Conv, ...]
  in_channels: int
  out_channels: int
  downsample: int  # input side / output side (1, or 2 after a 2x2 max-pool)


class LinearLayer(NamedTuple):
  """A linear op whose backward error path a rule may replace: its name (the key of `feedback`), 'conv' or
  'dense', and the path of its kernel in params."""

  name: str
  kind: str
  path: tuple[str, ...]


class Network(NamedTuple):
  """See the module docstring and `leut.models`. `blocks`, `head`, `readout` are empty/None for a flax model."""

  name: str
  init: Callable  # (key, *, conv_init="torch_default", conv_bias=False) -> (params, model_state)
  apply: Callable  # (params, model_state, x, *, train, dropout_key, dropout_rate, feedback, detach) -> 3-tuple
  features: Callable  # (params, model_state, x) -> {layer: N x U}, evaluation mode
  feature_layers: tuple[str, ...]
  linear_layers: tuple[LinearLayer, ...]
  blocks: tuple[Block, ...] = ()
  head: Callable | None = None  # (params, last_map, *, feedback=None) -> fc1 (N x D, after ReLU)
  readout: Callable | None = None  # (params, fc1, *, feedback=None) -> logits (N x K)


def kernel_at(params, layer: LinearLayer) -> jax.Array:
  node = params
  for key in layer.path:
    node = node[key]
  return node


def block_params(params: Mapping[str, Any], block: Block) -> dict:
  return {name: params[name] for name in block.param_names}


def pooled_features(acts: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
  """Per-layer feature vectors: spatial means of maps (N x H x W x C -> N x C); vectors as they are."""
  return {name: (a.mean(axis=(1, 2)) if a.ndim == 4 else a) for name, a in acts.items()}


def with_batch_stats(model_state: Mapping, batch_stats: Mapping) -> dict:
  """`model_state` with the running statistics of every BatchNorm in `batch_stats` moved one step."""
  new_state = dict(model_state)
  for bn, stats in batch_stats.items():
    new_state[bn] = layers.running_update(model_state[bn], stats)
  return new_state


def sequential(name: str, init: Callable, blocks, head: Callable, readout: Callable, linear_layers) -> Network:
  """A `Network` whose forward pass is the block stack, then `head`, dropout and `readout`:

      h_0 = x,  h_l = block_l(h_{l-1}),  fc1 = head(h_L),  logits = readout(Dropout(fc1))

  `apply(..., detach=True)` stops the gradient at every stage's input (direct feedback alignment: each stage is
  trained only through its own output) and returns in `acts` what the next stage reads (fc1 after dropout).
  """
  blocks = tuple(blocks)
  feature_layers = tuple(b.name for b in blocks) + ("fc1",)

  def apply(
    params,
    model_state,
    x_NxHxWxC,
    *,
    train: bool,
    dropout_key=None,
    dropout_rate: float = 0.0,
    feedback: Mapping[str, jax.Array] | None = None,
    detach: bool = False,
  ):
    cut = jax.lax.stop_gradient if detach else (lambda v: v)
    acts: dict[str, jax.Array] = {}
    new_state = dict(model_state)
    h = x_NxHxWxC
    for block in blocks:
      res = block.apply(params, model_state, cut(h), train=train, feedback=feedback)
      h = acts[block.name] = res.out
      new_state = with_batch_stats(new_state, res.batch_stats)
    fc1 = acts["fc1"] = head(params, cut(h), feedback=feedback)
    if train and dropout_rate > 0.0:
      if dropout_key is None:
        raise ValueError("Network.apply: dropout_rate > 0 in training needs a dropout_key")
      fc1 = layers.dropout(dropout_key, fc1, dropout_rate)
      if detach:
        acts["fc1"] = fc1
    return readout(params, cut(fc1), feedback=feedback), acts, new_state

  def features(params, model_state, x_NxHxWxC):
    _, acts, _ = apply(params, model_state, x_NxHxWxC, train=False)
    return pooled_features(acts)

  return Network(name, init, apply, features, feature_layers, tuple(linear_layers), blocks, head, readout)
