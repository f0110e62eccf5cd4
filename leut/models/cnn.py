"""The protocol CNN (PROTOCOL §1) as pure functions with explicit BatchNorm state.

    conv_k = MaxPool2(ReLU(BN_k(W_k * x)))      k = 1, 2, 3;  3x3, no bias, 32/64/128 channels
    fc1    = ReLU(W_fc1 · flatten(AdaptiveAvgPool4(conv3)) + b)      512 units
    logits = W_fc2 · Dropout(fc1) + b                                  10 classes

`params` holds what learning changes; `model_state` holds BatchNorm running statistics. `apply(..., train=True)`
normalises with batch statistics and returns updated running statistics; `features` is evaluation only: it has no
`train` switch and returns no state, so evaluation can neither use batch statistics nor mutate anything.

Feature readout (PROTOCOL §1.3): conv1..conv3 are block outputs averaged over space; fc1 reads conv3 through a
4x4 adaptive average pool, so any input side that is a multiple of 32 px works (32 ... 224).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp

from leut.models import layers

CONV_LAYERS = ("conv1", "conv2", "conv3")
FEATURE_LAYERS = ("conv1", "conv2", "conv3", "fc1")
BN_OF = {"conv1": "bn1", "conv2": "bn2", "conv3": "bn3"}

Params = dict[str, dict[str, jax.Array]]
ModelState = dict[str, dict[str, jax.Array]]
ConvFn = Callable[[str, jax.Array, jax.Array], jax.Array]


def default_conv(name: str, x: jax.Array, kernel: jax.Array) -> jax.Array:
  del name
  return layers.conv3x3(x, kernel)


def _uniform(key, shape, bound):
  return jax.random.uniform(key, shape, jnp.float32, -bound, bound)


def init(
  key: jax.Array,
  *,
  widths=(32, 64, 128),
  fc_dim: int = 512,
  n_classes: int = 10,
  pool_size: int = 4,
  in_channels: int = 3,
  conv_init: str = "torch_default",
) -> tuple[Params, ModelState]:
  """Draw parameters and BatchNorm state for one network.

  Args:
    key: a PRNG key; the same key gives bit-identical weights, whatever the learning rule (the untrained baseline is
      therefore the exact epoch-0 state of every trained rule).
    conv_init: "torch_default" (U(±1/sqrt(fan_in)), PyTorch's `kaiming_uniform_(a=sqrt(5))`, PROTOCOL §1.2) or
      "kaiming_normal" (N(0, 2/fan_in), the published FA/STDP initialisation).
  Returns:
    (params, model_state); BatchNorm starts at scale 1, bias 0, running mean 0, running var 1.
  """
  keys = jax.random.split(key, len(widths) + 4)
  params: Params = {}
  state: ModelState = {}
  c_in = in_channels
  for i, c_out in enumerate(widths):
    name, bn = CONV_LAYERS[i], BN_OF[CONV_LAYERS[i]]
    fan_in = 9 * c_in
    if conv_init == "torch_default":
      kernel = _uniform(keys[i], (3, 3, c_in, c_out), 1.0 / math.sqrt(fan_in))
    elif conv_init == "kaiming_normal":
      kernel = jax.random.normal(keys[i], (3, 3, c_in, c_out)) * math.sqrt(2.0 / fan_in)
    else:
      raise ValueError(f"unknown conv_init {conv_init!r}; use 'torch_default' or 'kaiming_normal'")
    params[name] = {"kernel": kernel}
    params[bn] = {"scale": jnp.ones((c_out,)), "bias": jnp.zeros((c_out,))}
    state[bn] = {"mean": jnp.zeros((c_out,)), "var": jnp.ones((c_out,))}
    c_in = c_out
  fc1_in = widths[-1] * pool_size * pool_size
  k = len(widths)
  params["fc1"] = {
    "kernel": _uniform(keys[k], (fc1_in, fc_dim), 1 / math.sqrt(fc1_in)),
    "bias": _uniform(keys[k + 1], (fc_dim,), 1 / math.sqrt(fc1_in)),
  }
  params["fc2"] = {
    "kernel": _uniform(keys[k + 2], (fc_dim, n_classes), 1 / math.sqrt(fc_dim)),
    "bias": _uniform(keys[k + 3], (n_classes,), 1 / math.sqrt(fc_dim)),
  }
  return params, state


def conv_block(
  params: Params, model_state: ModelState, name: str, x: jax.Array, *, train: bool, conv: ConvFn = default_conv
):
  """One block, MaxPool2(ReLU(BN(conv(x)))); returns `(out, new_bn_stats or None)`.

  Training with the default convolution takes the fused `layers.conv_bn_relu_pool` (same values and gradients to
  float32 rounding; reverse-mode autodiff only); a custom `conv` hook or a conv bias takes the unfused layers.
  """
  bn = BN_OF[name]
  stats = model_state[bn]
  if train and conv is default_conv and "bias" not in params[name]:
    out, mu, var = layers.conv_bn_relu_pool(x, params[name]["kernel"], params[bn]["scale"], params[bn]["bias"])
    n = x.shape[0] * x.shape[1] * x.shape[2]  # conv3x3 keeps the spatial size
    mean, var = layers.running_stats(stats["mean"], stats["var"], mu, var, n)
    return out, {"mean": mean, "var": var}
  z = conv(name, x, params[name]["kernel"])
  if "bias" in params[name]:
    z = z + params[name]["bias"].reshape(1, 1, 1, -1)
  if train:
    z, (mean, var) = layers.batch_norm_train(z, params[bn]["scale"], params[bn]["bias"], stats["mean"], stats["var"])
    new_stats = {"mean": mean, "var": var}
  else:
    z = layers.batch_norm_eval(z, params[bn]["scale"], params[bn]["bias"], stats["mean"], stats["var"])
    new_stats = None
  return layers.max_pool2(jax.nn.relu(z)), new_stats


def head(params: Params, conv3_NxHxWxC: jax.Array, *, pool_size: int = 4):
  """fc1 features (ReLU) from the conv3 map: AdaptiveAvgPool(pool_size) → flatten → fc1 → ReLU."""
  pooled = layers.adaptive_avg_pool(conv3_NxHxWxC, pool_size)
  flat = pooled.reshape(pooled.shape[0], -1)
  return jax.nn.relu(flat @ params["fc1"]["kernel"] + params["fc1"]["bias"][None, :])


def readout(params: Params, fc1_NxD: jax.Array) -> jax.Array:
  return fc1_NxD @ params["fc2"]["kernel"] + params["fc2"]["bias"][None, :]


def apply(
  params: Params,
  model_state: ModelState,
  x_NxHxWx3: jax.Array,
  *,
  train: bool,
  dropout_key: jax.Array | None = None,
  dropout_rate: float = 0.0,
  conv: ConvFn = default_conv,
  pool_size: int = 4,
) -> tuple[jax.Array, dict[str, jax.Array], ModelState]:
  """Forward pass. Returns `(logits_NxK, acts, new_model_state)`.

  `acts` maps conv1..conv3 to the block output maps and fc1 to its (pre-dropout) activations. With `train=False`
  the state is returned unchanged. Dropout applies only when `train` and `dropout_rate > 0` (needs `dropout_key`).
  """
  acts: dict[str, jax.Array] = {}
  new_state: ModelState = dict(model_state)
  h = x_NxHxWx3
  for name in CONV_LAYERS:
    h, stats = conv_block(params, model_state, name, h, train=train, conv=conv)
    acts[name] = h
    if stats is not None:
      new_state[BN_OF[name]] = stats
  fc1 = head(params, h, pool_size=pool_size)
  acts["fc1"] = fc1
  if train and dropout_rate > 0.0:
    if dropout_key is None:
      raise ValueError("apply: dropout_rate > 0 in training needs a dropout_key")
    fc1 = layers.dropout(dropout_key, fc1, dropout_rate)
  return readout(params, fc1), acts, new_state


def pooled_features(acts: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
  """Per-layer feature vectors from block maps: spatial means of conv maps; fc1 as is."""
  return {name: (a.mean(axis=(1, 2)) if a.ndim == 4 else a) for name, a in acts.items()}


def features(
  params: Params, model_state: ModelState, x_NxHxWx3: jax.Array, *, conv: ConvFn = default_conv, pool_size: int = 4
) -> dict[str, jax.Array]:
  """Evaluation-mode layer features `{conv1: NxC1, conv2: NxC2, conv3: NxC3, fc1: NxD}` (running BN statistics)."""
  _, acts, _ = apply(params, model_state, x_NxHxWx3, train=False, conv=conv, pool_size=pool_size)
  return pooled_features(acts)


def predict(params: Params, model_state: ModelState, x_NxHxWx3: jax.Array, **kw: Any) -> jax.Array:
  """Evaluation-mode logits."""
  logits, _, _ = apply(params, model_state, x_NxHxWx3, train=False, **kw)
  return logits
