"""Shared pieces of the local rules: convolutional correlations and the per-group optimiser split.

Private (leading underscore) so the rule registry (`leut.rules.available`) does not list it as a rule.

The two correlations are the adjoints of the 3x3 convolution of `leut.models.layers.conv3x3`:

    patch_correlation(x, δ)[dy, dx, c, o] = Σ_{n,h,w} x[n, h+dy-1, w+dx-1, c] · δ[n, h, w, o]      (= ∂/∂K Σ δ·(x*K))
    conv_transpose(δ, K)[n, h, w, c]      = Σ_{dy,dx,o} δ[n, h-dy+1, w-dx+1, o] · K[dy, dx, c, o]  (= ∂/∂x Σ δ·(x*K))

so a local rule that wants "error ⊗ input over every 3x3 patch" gets the full 3x3 x C_in x C_out update, never a
channel-mean outer product. Both are the convolutions of `conv3x3`'s own VJP (one per seed under vmap).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from leut.models import layers
from leut.models.network import Network, with_batch_stats


def patch_correlation(x_NxHxWxC: jax.Array, delta_NxHxWxO: jax.Array) -> jax.Array:
  """Σ over batch and positions of (3x3 input patch) ⊗ (output-position signal): returns `3 x 3 x C x O`."""
  return layers.conv3x3_kernel_grad(x_NxHxWxC, delta_NxHxWxO)


def conv_transpose(delta_NxHxWxO: jax.Array, kernel_3x3xCxO: jax.Array) -> jax.Array:
  """The input-side adjoint of `conv3x3(·, kernel)`: a 'SAME' conv with the flipped, in/out-swapped kernel."""
  return layers.conv3x3_input_grad(delta_NxHxWxO, kernel_3x3xCxO)


def upsample2(x_NxHxWxC: jax.Array) -> jax.Array:
  """Nearest-neighbour ×2 upsampling (PyTorch `Upsample(scale_factor=2, mode='nearest')`)."""
  return jnp.repeat(jnp.repeat(x_NxHxWxC, 2, axis=1), 2, axis=2)


def upsample(x_NxHxWxC: jax.Array, factor: int) -> jax.Array:
  """Nearest-neighbour upsampling by `factor` (1: unchanged, 2: `upsample2`)."""
  return x_NxHxWxC if factor == 1 else upsample2(x_NxHxWxC)


def sum_pool(x_NxHxWxC: jax.Array, factor: int) -> jax.Array:
  """The adjoint of `upsample(·, factor)`: the sum over each factor x factor block (1: unchanged)."""
  return x_NxHxWxC if factor == 1 else 4.0 * layers.avg_pool2(x_NxHxWxC)


def group_of(name: str) -> str:
  """'conv' for conv kernels, 'head' for fc1/fc2, 'bn' for BatchNorm affine parameters, from the first
  '_'-separated part of the name that starts with conv / fc / bn ('conv2', 'res1_bn_a', 'fc1')."""
  for part in name.split("_"):
    for prefix, group in (("conv", "conv"), ("fc", "head"), ("bn", "bn")):
      if part.startswith(prefix):
        return group
  raise ValueError(f"unknown parameter group {name!r}")


def split_optimizer(groups: dict[str, optax.GradientTransformation]) -> optax.GradientTransformation:
  """`optax.multi_transform` keyed by the top-level parameter name's group (see `group_of`)."""

  def labels(params):
    return {name: jax.tree.map(lambda _, g=group: g, sub) for name, sub in params.items() for group in [group_of(name)]}

  return optax.multi_transform(groups, labels)


def uniform(key: jax.Array, shape: tuple[int, ...], fan_in: int) -> jax.Array:
  """U(±1/sqrt(fan_in)): PyTorch's default Conv2d/Linear initialisation (`kaiming_uniform_(a=sqrt(5))`)."""
  bound = 1.0 / jnp.sqrt(float(fan_in))
  return jax.random.uniform(key, shape, jnp.float32, -bound, bound)


def needs_protocol_cnn(rule_name: str, network) -> None:
  """Refuse any network but the 3-block protocol CNN (every block pooled) for a replication of published code."""
  if network.name != "cnn" or len(network.blocks) != 3 or any(b.downsample != 2 for b in network.blocks):
    raise ValueError(
      f"{rule_name} replicates published code written for the 3-block protocol CNN (model.name='cnn', three "
      f"widths, every block pooled); this network is {network.name!r} with blocks "
      f"{[b.name for b in network.blocks]}. Use its textbook counterpart for other architectures."
    )


def forward_fixed_kernels(network: Network, params, model_state, x_NxHxWx3):
  """Train-mode forward with the conv kernels held fixed: (logits, [(conv name, pre, post)] per conv, new_state).

  Used by the local rules that learn the convs from their taps (STDP, SoftHebb) while fc1/fc2 learn by backprop."""
  fixed = dict(params)
  for block in network.blocks:
    for conv in block.convs:
      fixed[conv.name] = dict(params[conv.name], kernel=jax.lax.stop_gradient(params[conv.name]["kernel"]))
  h, taps, new_state = x_NxHxWx3, [], dict(model_state)
  for block in network.blocks:
    res = block.apply(fixed, model_state, h, train=True, taps=True)
    taps += list(res.taps)
    new_state = with_batch_stats(new_state, res.batch_stats)
    h = res.out
  return network.readout(params, network.head(params, h)), taps, new_state
