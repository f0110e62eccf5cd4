"""Hierarchical predictive coding over the blocks of a network, written as energy → inference → local update (jpc's
split).

Rao & Ballard (1999), Nat. Neurosci. 2:79; Whittington & Bogacz (2017), Neural Comput. 29:1229; the hybrid
(amortised) form with a recognition network whose feedforward pass initialises inference is Tschantz et al. (2023),
"Hybrid predictive coding", PLoS Comput. Biol. Representations r_1..r_L live at the block outputs; r_0 = x.

    f_l(r_{l-1}) = block_l(r_{l-1}) with BN*_l          recognition (bottom-up) prediction of r_l; for the protocol
                                                        CNN MaxPool2(ReLU(BN*_l(W_l * r_{l-1})))
    g_l(r_l)     = φ(Up_l(G_l * r_l))                   generative (top-down) prediction of r_{l-1}; Up_l = the
                                                        nearest upsampling undoing the block's downsampling (x2 or x1)
    F(r) = (1/N) Σ_l [ λ_bu/2 ‖r_l − f_l(r_{l-1})‖² + λ_td/2 ‖r_{l-1} − g_l(r_l)‖² ]

1. Initialise r_l = f_l(r_{l-1}) (one feedforward pass; bottom-up errors are then zero).
2. Inference: `inference_steps` steps of an optax optimiser (SGD, step `lr_r`) on ∂F/∂r, each followed by
   r ← max(r, 0) (representations are post-ReLU), in `lax.scan`. Only the top-down errors drive r at first;
   the bottom-up errors grow as r moves away from the feedforward guess.
3. Local weight updates at the inferred r (both are −∂F/∂θ, then divided by the number P_l of spatial positions of
   the block's input: a per-layer positive step scaling that makes the SGD steps lr_w, lr_g independent of
   resolution and map size; with the raw sum, stability needs lr ~ 1/P):
       ΔG_l ∝ −∂F/∂G_l = λ_td · SumPool_l(ε^td_{l-1} ⊙ φ') ⋆ r_l          ε^td_{l-1} = r_{l-1} − g_l(r_l)
       Δθ_l ∝ −∂F/∂θ_l = λ_bu · VJP of f_l w.r.t. θ_l at ε^bu_l           ε^bu_l = r_l − f_l(r_{l-1})
   For a conv block the second is ẽ_l ⋆ r_{l-1}, with ẽ_l = ε^bu_l pulled back through pool, ReLU and BN*_l
   only, and ⋆ the sum of (3x3 input patch) ⊗ (error at that position) over batch and positions
   (`_local.patch_correlation`); SumPool_l (a 2x2 sum, or nothing) is the adjoint of Up_l. The conv runs at
   r_l's resolution before the upsampling (the published P2/P3 order), 4x cheaper than upsample-then-conv.
   Every convolution learns (the recognition net learns to amortise inference); every G_l learns.
4. Readout: fc1, fc2 are trained by backprop on the detached post-inference r_L (cross-entropy), Adam(1e-3).

BatchNorm: the feedforward initialisation runs BN in training mode (batch statistics; the running statistics are
updated once per step). Those batch statistics are then frozen as a per-channel affine map BN*_l for inference and
the weight update, so F is a per-example energy (no coupling of examples through batch statistics) and f_l is a
fixed function during inference. BN's γ/β are not learned (the optimiser zeroes them). `represent` uses the
running statistics for BN* and the same inference, so an example's features never depend on its batch.

Generative weights: G_l (3x3 x C_l x C_{l-1}; G_1 predicts the image) live in the rule state, not in params, so
params keep the exact structure of the shared network (checkpoints, features and the untrained baseline share one
tree). The rule itself steps them with an optax transformation of ∂F/∂G / P_l, `generative_optimizer` (default plain
SGD at `lr_g`, replaceable by any optax optimiser); the recognition convs get plain SGD at `lr_w` from the optimiser.
G_l ~ U(±1/sqrt(9 C_l)), PyTorch's conv default. φ = identity (default) or tanh.

Cost: each inference step costs a little over half a backprop step, mostly convolutions (measurements in
`benchmarks/README.md`); `represent`
runs the same inference. Measured on random images at the defaults: energy falls steadily over 300 steps and
conv1/conv2/conv3 move 1%/26%/30% with filter norms within 1%.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from leut.models import layers
from leut.models.network import Network, block_params, with_batch_stats
from leut.rules import _local, base

Activities = tuple  # tuple of arrays, one per free layer


class PredictiveCodingState(NamedTuple):
  generative: dict  # "conv1".."conv3" -> G_l, 3 x 3 x C_l x C_{l-1}: predicts r_{l-1} from r_l
  generative_opt_state: Any = ()  # state of the optimiser that steps G (`generative_optimizer`)


class InferenceResult(NamedTuple):
  activities: Activities
  energies: jax.Array  # (steps + 1,): F before each step and after the last


# --- layer-agnostic core -----------------------------------------------------------------------------------------


def energy(
  activities: Activities,
  x,
  *,
  forward: Sequence[Callable] | None,
  generative: Sequence[Callable] | None,
  bu_weight: float = 1.0,
  td_weight: float = 1.0,
  top=None,
  top_weight: float = 1.0,
) -> jax.Array:
  """F = (1/N) Σ_l [λ_bu/2 ‖r_l − f_l(r_{l-1})‖² + λ_td/2 ‖r_{l-1} − g_l(r_l)‖²],  r_0 = x.

  `forward[l]` / `generative[l]` are the layer maps f_{l+1}, g_{l+1} (either list may be None). `top`, if given,
  is a clamped r_L appended after the free activities (Whittington & Bogacz's supervised setting); its error
  terms are weighted by the extra precision `top_weight` (W&B: PC → BP when the output precision is small
  relative to the hidden ones, so the hidden activities move little and ε_L stays ≈ the nudge).
  """
  rs = tuple(activities) + ((top,) if top is not None else ())
  below = (x,) + rs[:-1]
  n = x.shape[0]
  total = 0.0
  for l, (r, r_below) in enumerate(zip(rs, below)):
    precision = top_weight if (top is not None and l == len(rs) - 1) else 1.0
    if forward is not None:
      total = total + 0.5 * precision * bu_weight * jnp.sum(jnp.square(r - forward[l](r_below)))
    if generative is not None:
      total = total + 0.5 * precision * td_weight * jnp.sum(jnp.square(r_below - generative[l](r)))
  return total / n


def infer(
  energy_fn: Callable[[Activities], jax.Array],
  activities: Activities,
  *,
  steps: int,
  optimizer: optax.GradientTransformation,
  nonneg: bool = False,
) -> InferenceResult:
  """`steps` optimiser steps descending ∂F/∂r (jpc-style: the activities are optax parameters), in `lax.scan`."""

  def step(carry, _):
    rs, opt_state = carry
    f, grads = jax.value_and_grad(energy_fn)(rs)
    updates, opt_state = optimizer.update(grads, opt_state, rs)
    rs = optax.apply_updates(rs, updates)
    if nonneg:
      rs = jax.tree.map(jax.nn.relu, rs)
    return (rs, opt_state), f

  (rs, _), energies = jax.lax.scan(step, (activities, optimizer.init(activities)), None, length=steps)
  return InferenceResult(rs, jnp.concatenate([energies, energy_fn(rs)[None]]))


# --- the block hierarchy ----------------------------------------------------------------------------------------


def feedforward(network: Network, params, model_state, x_NxHxWx3, *, train: bool):
  """Feedforward r_1..r_L and the BatchNorm statistics BN* that inference freezes (the batch's if `train`, else
  the running ones), with the model state after the pass (running statistics moved once if `train`)."""
  h, rs, frozen, new_state = x_NxHxWx3, [], dict(model_state), dict(model_state)
  for block in network.blocks:
    res = block.apply(params, model_state, h, train=train)
    for bn, stats in res.batch_stats.items():
      frozen[bn] = {"mean": stats.mean, "var": stats.var}
    new_state = with_batch_stats(new_state, res.batch_stats)
    h = res.out
    rs.append(h)
  return tuple(rs), jax.lax.stop_gradient(frozen), new_state


def _generation(g_kernel, factor: int, activation: str):
  phi = jnp.tanh if activation == "tanh" else (lambda z: z)
  return lambda r: phi(_local.upsample(layers.conv3x3(r, g_kernel), factor))


def hierarchy(network: Network, params, generative, frozen, *, activation: str = "linear"):
  """The layer maps (f_1..f_L, g_1..g_L) of the block hierarchy for `energy`: f_l = block l with BN* frozen."""
  fwd = [(lambda r, b=b: b.apply(params, frozen, r, train=False).out) for b in network.blocks]
  gen = [_generation(generative[b.name], b.downsample, activation) for b in network.blocks]
  return fwd, gen


def local_weight_grads(
  network: Network,
  params,
  generative,
  frozen,
  rs: Activities,
  x,
  *,
  bu_weight: float,
  td_weight: float,
  activation: str = "linear",
):
  """∂F/∂θ_l of each block's parameters and ∂F/∂G_l at fixed r, each from layer-local quantities.

  Returns `(dθ, dG)`: dθ maps block name -> gradient of its parameters (the VJP of f_l at r_{l-1}, which for a
  conv block is `patch_correlation(r_{l-1}, ẽ_l)`); dG maps block name -> the generative kernel's gradient
  (gradient convention: the update is minus these).
  """
  n = x.shape[0]
  below = (x,) + tuple(rs[:-1])
  d_w, d_g = {}, {}
  for block, r, r_below in zip(network.blocks, rs, below):
    # recognition: ε^bu_l pulled back through this block only (its convs, BN*, ReLU, pool), to its parameters.
    post, pullback = jax.vjp(
      lambda p, b=block: b.apply(p, frozen, r_below, train=False).out, block_params(params, block)
    )
    (d_w[block.name],) = pullback(-bu_weight * (r - post) / n)
    # generative: ε^td_{l-1} ⊙ φ', summed back over each upsampling block, correlated with r_l.
    pre = _local.upsample(layers.conv3x3(r, generative[block.name]), block.downsample)
    pred, phi_prime = (jnp.tanh(pre), 1.0 - jnp.square(jnp.tanh(pre))) if activation == "tanh" else (pre, 1.0)
    err = _local.sum_pool(td_weight * (r_below - pred) * phi_prime / n, block.downsample)
    d_g[block.name] = -_local.patch_correlation(r, err)
  return d_w, d_g


def predictive_coding(
  network: Network,
  *,
  inference_steps: int = 20,
  lr_r: float = 0.1,
  lr_g: float = 1e-3,
  bu_weight: float = 1.0,
  td_weight: float = 1.0,
  activation: str = "linear",
  generative_optimizer: optax.GradientTransformation | None = None,
) -> base.LearningRule:
  """Predictive coding over the blocks of `network` as a `LearningRule` (equations in the module docstring).

  Args:
    network: a network of leut blocks (`model.name` 'cnn' or 'resnet'); a flax model is refused.
    inference_steps: SGD steps on the activities per batch.
    lr_r: activity step size.
    lr_g: SGD step of the generative weights G (applied here; the recognition convs get `lr_w` from the
      optimiser). Both steps act on the position-averaged gradient (see below).
    bu_weight, td_weight: λ_bu, λ_td, the precisions of the bottom-up and top-down errors.
    activation: φ of the generative prediction, "linear" or "tanh".
    generative_optimizer: the optax transformation that steps G on ∂F/∂G_l / P_l (default `optax.sgd(lr_g)`).
  """
  base.needs_blocks("predictive_coding", network)
  if activation not in ("linear", "tanh"):
    raise ValueError(f"predictive_coding: activation must be 'linear' or 'tanh', got {activation!r}")
  act_opt = optax.sgd(lr_r)
  gen_opt = optax.sgd(lr_g) if generative_optimizer is None else generative_optimizer
  blocks = network.blocks

  def init(key, params):
    del params
    keys = jax.random.split(key, len(blocks))
    generative = {
      b.name: _local.uniform(k, (3, 3, b.out_channels, b.in_channels), 9 * b.out_channels) for k, b in zip(keys, blocks)
    }
    return PredictiveCodingState(generative, gen_opt.init(generative))

  def run_inference(params, generative, frozen, rs0, x):
    fwd, gen = hierarchy(network, params, generative, frozen, activation=activation)

    def energy_fn(rs):
      return energy(rs, x, forward=fwd, generative=gen, bu_weight=bu_weight, td_weight=td_weight)

    return infer(energy_fn, rs0, steps=inference_steps, optimizer=act_opt, nonneg=True)

  def update(params, model_state, rule_state, batch: base.Batch, key):
    del key
    x = batch.images
    rs0, frozen, new_state = feedforward(network, params, model_state, x, train=True)
    result = run_inference(params, rule_state.generative, frozen, rs0, x)
    rs = jax.tree.map(jax.lax.stop_gradient, result.activities)
    d_w, d_g = local_weight_grads(
      network,
      params,
      rule_state.generative,
      frozen,
      rs,
      x,
      bu_weight=bu_weight,
      td_weight=td_weight,
      activation=activation,
    )

    def head_loss(p):
      logits = network.readout(p, network.head(p, rs[-1]))
      return base.cross_entropy(logits, batch.labels), logits

    (loss, logits), head_grads = jax.value_and_grad(head_loss, has_aux=True)(params)
    grads = jax.tree.map(jnp.zeros_like, params)
    below = (x,) + tuple(rs[:-1])
    d_g_per_position = {}
    for block, r_below in zip(blocks, below):
      positions = r_below.shape[1] * r_below.shape[2]  # the correlations sum over the block input's positions
      for conv in block.convs:  # BatchNorm's γ/β are not learned (BN* is frozen)
        grads[conv.name] = jax.tree.map(lambda g, p=positions: g / p, d_w[block.name][conv.name])
      d_g_per_position[block.name] = d_g[block.name] / positions
    g_updates, gen_opt_state = gen_opt.update(d_g_per_position, rule_state.generative_opt_state, rule_state.generative)
    generative = optax.apply_updates(rule_state.generative, g_updates)
    for name in ("fc1", "fc2"):
      grads[name] = head_grads[name]
    metrics = base.classification_metrics(loss, logits, batch.labels)
    metrics.update(energy_initial=result.energies[0], energy_final=result.energies[-1])
    return base.RuleUpdate(grads, new_state, PredictiveCodingState(generative, gen_opt_state), metrics)

  def represent(params, model_state, rule_state, x_NxHxWx3):
    """Post-inference representations with running BN statistics: logits and spatially averaged features."""
    rs0, frozen, _ = feedforward(network, params, model_state, x_NxHxWx3, train=False)
    rs = run_inference(params, rule_state.generative, frozen, rs0, x_NxHxWx3).activities
    fc1 = network.head(params, rs[-1])
    feats = {b.name: r.mean(axis=(1, 2)) for b, r in zip(blocks, rs)}
    feats["fc1"] = fc1
    return network.readout(params, fc1), feats

  return base.LearningRule(init, update, represent)


def protocol_optimizer(
  *, steps_per_epoch: int, epochs: int, lr_w: float = 1e-3, head_learning_rate: float = 1e-3
) -> optax.GradientTransformation:
  """Recognition convs: plain SGD with `lr_w` on the local direction; fc1/fc2: Adam(1e-3); BN affine: frozen."""
  del steps_per_epoch, epochs
  return _local.split_optimizer(
    {"conv": optax.sgd(lr_w), "head": optax.adam(head_learning_rate), "bn": optax.set_to_zero()}
  )
