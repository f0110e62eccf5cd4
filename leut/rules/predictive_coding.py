"""Hierarchical convolutional predictive coding, written as energy → inference → local update (jpc's split).

Rao & Ballard (1999), Nat. Neurosci. 2:79; Whittington & Bogacz (2017), Neural Comput. 29:1229; the hybrid
(amortised) form with a recognition network whose feedforward pass initialises inference is Tschantz et al. (2023),
"Hybrid predictive coding", PLoS Comput. Biol. Representations r_1..r_3 live at the conv block outputs; r_0 = x.

    f_l(r_{l-1}) = MaxPool2(ReLU(BN*_l(W_l * r_{l-1})))        recognition (bottom-up) prediction of r_l
    g_l(r_l)     = φ(Upsample2(G_l * r_l))                       generative (top-down) prediction of r_{l-1}
    F(r) = (1/N) Σ_l [ λ_bu/2 ‖r_l − f_l(r_{l-1})‖² + λ_td/2 ‖r_{l-1} − g_l(r_l)‖² ]

1. Initialise r_l = f_l(r_{l-1}) (one feedforward pass; bottom-up errors are then zero).
2. Inference: `inference_steps` steps of an optax optimiser (SGD, step `lr_r`) on ∂F/∂r, each followed by
   r ← max(r, 0) (representations are post-ReLU), in `lax.scan`. Only the top-down errors drive r at first;
   the bottom-up errors grow as r moves away from the feedforward guess.
3. Local weight updates at the inferred r (both are −∂F/∂θ, computed as convolutional correlations, then divided
   by the number P_l of spatial positions the correlation sums over: a per-layer positive step scaling that makes
   the SGD steps lr_w, lr_g independent of resolution and map size; with the raw sum, stability needs lr ~ 1/P):
       ΔG_l ∝ −∂F/∂G_l = λ_td · SumPool2(ε^td_{l-1} ⊙ φ') ⋆ r_l           ε^td_{l-1} = r_{l-1} − g_l(r_l)
       ΔW_l ∝ −∂F/∂W_l = λ_bu · ẽ_l ⋆ r_{l-1}                              ẽ_l = ε^bu_l pulled back through
                                                                            pool, ReLU and BN* of layer l only
   where ⋆ sums (3x3 input patch) ⊗ (error at that position) over batch and positions (`_local.patch_correlation`)
   and SumPool2 (2x2 sum) is the adjoint of the nearest upsampling. The conv runs at r_l's resolution before the
   upsampling (the published P2/P3 order), 4x cheaper than upsample-then-conv.
   Every conv layer learns (the recognition net learns to amortise inference); every G_l learns.
4. Readout: fc1, fc2 are trained by backprop on the detached post-inference r_3 (cross-entropy), Adam(1e-3).

BatchNorm: the feedforward initialisation runs BN in training mode (batch statistics; the running statistics are
updated once per step). Those batch statistics are then frozen as a per-channel affine map BN*_l for inference and
the weight update, so F is a per-example energy (no coupling of examples through batch statistics) and f_l is a
fixed function during inference. BN's γ/β are not learned (the optimiser zeroes them). `evaluate` uses the
running statistics for BN* and the same inference, so an example's features never depend on its batch.

Generative weights: G_l (3x3 x C_l x C_{l-1}; G_1 predicts the image) live in the rule state, not in params, so
params keep the exact structure of the shared CNN (checkpoints, features and the untrained baseline share one
tree). The rule itself steps them with plain SGD at `lr_g`; the recognition convs get plain SGD at `lr_w` from the
optimiser. G_l ~ U(±1/sqrt(9 C_l)), PyTorch's conv default. φ = identity (default) or tanh.

Cost: one step is ~11-14x a backprop step at the default 20 inference steps (CPU, 5 seeds, batch 128, full
widths; ~30 ms per inference step and seed, two thirds of it convolutions, `benchmarks/README.md`); `evaluate`
runs the same inference. Measured on random images at the defaults: energy falls steadily over 300 steps and
conv1/conv2/conv3 move 1%/26%/30% with filter norms within 1%.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from leut.models import cnn, layers
from leut.rules import _local, base

Activities = tuple  # tuple of arrays, one per free layer


class PredictiveCodingState(NamedTuple):
  generative: dict  # "conv1".."conv3" -> G_l, 3 x 3 x C_l x C_{l-1}: predicts r_{l-1} from r_l


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


# --- the convolutional hierarchy ---------------------------------------------------------------------------------


def _frozen_bn(params, name, mean_C, var_C):
  bn = params[cnn.BN_OF[name]]
  return lambda z: layers.batch_norm_eval(z, bn["scale"], bn["bias"], mean_C, var_C)


def _recognition(kernel, norm):
  return lambda r_below: layers.max_pool2(jax.nn.relu(norm(layers.conv3x3(r_below, kernel))))


def _generation(g_kernel, activation):
  phi = jnp.tanh if activation == "tanh" else (lambda z: z)
  return lambda r: phi(_local.upsample2(layers.conv3x3(r, g_kernel)))


def feedforward(params, model_state, x_NxHxWx3, *, train: bool):
  """Feedforward r_1..r_3 and the per-layer normalisations BN*_l (batch stats if `train`, else running stats)."""
  h, rs, norms, new_state = x_NxHxWx3, [], {}, dict(model_state)
  for name in cnn.CONV_LAYERS:
    z = layers.conv3x3(h, params[name]["kernel"])
    stats = model_state[cnn.BN_OF[name]]
    if train:
      mean, var = jnp.mean(z, axis=(0, 1, 2)), jnp.var(z, axis=(0, 1, 2))
      bn = params[cnn.BN_OF[name]]
      _, (rm, rv) = layers.batch_norm_train(z, bn["scale"], bn["bias"], stats["mean"], stats["var"])
      new_state[cnn.BN_OF[name]] = {"mean": rm, "var": rv}
    else:
      mean, var = stats["mean"], stats["var"]
    norms[name] = _frozen_bn(params, name, jax.lax.stop_gradient(mean), jax.lax.stop_gradient(var))
    h = layers.max_pool2(jax.nn.relu(norms[name](z)))
    rs.append(h)
  return tuple(rs), norms, new_state


def hierarchy(params, generative, norms, *, activation: str = "linear"):
  """The layer maps (f_1..f_3, g_1..g_3) of the conv hierarchy for `energy`."""
  fwd = [_recognition(params[name]["kernel"], norms[name]) for name in cnn.CONV_LAYERS]
  gen = [_generation(generative[name], activation) for name in cnn.CONV_LAYERS]
  return fwd, gen


def local_weight_grads(
  params, generative, norms, rs: Activities, x, *, bu_weight: float, td_weight: float, activation: str = "linear"
):
  """∂F/∂W_l and ∂F/∂G_l at fixed r, each from layer-local quantities as a convolutional correlation.

  Returns `(dW, dG)` dicts keyed by conv layer name (gradient convention: the update is minus these).
  """
  n = x.shape[0]
  below = (x,) + tuple(rs[:-1])
  d_w, d_g = {}, {}
  for name, r, r_below in zip(cnn.CONV_LAYERS, rs, below):
    # recognition: pull ε^bu_l back through pool, ReLU and BN* of this layer only, then correlate with r_{l-1}.
    z = layers.conv3x3(r_below, params[name]["kernel"])
    post, pullback = jax.vjp(lambda z_: layers.max_pool2(jax.nn.relu(norms[name](z_))), z)
    (err_z,) = pullback(bu_weight * (r - post) / n)
    d_w[name] = -_local.patch_correlation(r_below, err_z)
    # generative: ε^td_{l-1} ⊙ φ', summed back over each 2x2 upsampling block, correlated with r_l.
    pre = _local.upsample2(layers.conv3x3(r, generative[name]))
    pred, phi_prime = (jnp.tanh(pre), 1.0 - jnp.square(jnp.tanh(pre))) if activation == "tanh" else (pre, 1.0)
    d_g[name] = -_local.patch_correlation(r, 4.0 * layers.avg_pool2(td_weight * (r_below - pred) * phi_prime / n))
  return d_w, d_g


def predictive_coding(
  *,
  inference_steps: int = 20,
  lr_r: float = 0.1,
  lr_g: float = 1e-3,
  bu_weight: float = 1.0,
  td_weight: float = 1.0,
  activation: str = "linear",
) -> base.LearningRule:
  """Convolutional PC as a `LearningRule` (see the module docstring for the equations).

  Args:
    inference_steps: SGD steps on the activities per batch.
    lr_r: activity step size.
    lr_g: SGD step of the generative weights G (applied here; the recognition convs get `lr_w` from the
      optimiser). Both steps act on the position-averaged gradient (see below).
    bu_weight, td_weight: λ_bu, λ_td, the precisions of the bottom-up and top-down errors.
    activation: φ of the generative prediction, "linear" or "tanh".
  """
  if activation not in ("linear", "tanh"):
    raise ValueError(f"predictive_coding: activation must be 'linear' or 'tanh', got {activation!r}")
  act_opt = optax.sgd(lr_r)

  def init(key, params):
    keys = jax.random.split(key, len(cnn.CONV_LAYERS))
    gen = {}
    for k, name in zip(keys, cnn.CONV_LAYERS):
      c_hi, c_lo = params[name]["kernel"].shape[3], params[name]["kernel"].shape[2]
      gen[name] = _local.uniform(k, (3, 3, c_hi, c_lo), 9 * c_hi)
    return PredictiveCodingState(gen)

  def run_inference(params, generative, norms, rs0, x):
    fwd, gen = hierarchy(params, generative, norms, activation=activation)
    energy_fn = lambda rs: energy(
      rs,
      x,
      forward=fwd,
      generative=gen,  # noqa: E731
      bu_weight=bu_weight,
      td_weight=td_weight,
    )
    return infer(energy_fn, rs0, steps=inference_steps, optimizer=act_opt, nonneg=True)

  def update(params, model_state, rule_state, batch: base.Batch, key):
    del key
    x = batch.images
    rs0, norms, new_state = feedforward(params, model_state, x, train=True)
    result = run_inference(params, rule_state.generative, norms, rs0, x)
    rs = jax.tree.map(jax.lax.stop_gradient, result.activities)
    d_w, d_g = local_weight_grads(
      params, rule_state.generative, norms, rs, x, bu_weight=bu_weight, td_weight=td_weight, activation=activation
    )

    def head_loss(p):
      logits = cnn.readout(p, cnn.head(p, rs[-1]))
      return base.cross_entropy(logits, batch.labels), logits

    (loss, logits), head_grads = jax.value_and_grad(head_loss, has_aux=True)(params)
    grads = jax.tree.map(jnp.zeros_like, params)
    below = (x,) + tuple(rs[:-1])
    generative = {}
    for name, r_below in zip(cnn.CONV_LAYERS, below):
      positions = r_below.shape[1] * r_below.shape[2]  # both correlations sum over r_{l-1}'s positions
      grads[name] = {"kernel": d_w[name] / positions}
      generative[name] = rule_state.generative[name] - lr_g * d_g[name] / positions
    for name in ("fc1", "fc2"):
      grads[name] = head_grads[name]
    metrics = base.classification_metrics(loss, logits, batch.labels)
    metrics.update(energy_initial=result.energies[0], energy_final=result.energies[-1])
    return base.RuleUpdate(grads, new_state, PredictiveCodingState(generative), metrics)

  def evaluate(params, model_state, rule_state, x_NxHxWx3):
    """Post-inference representations with running BN statistics: logits and spatially averaged features."""
    rs0, norms, _ = feedforward(params, model_state, x_NxHxWx3, train=False)
    rs = run_inference(params, rule_state.generative, norms, rs0, x_NxHxWx3).activities
    fc1 = cnn.head(params, rs[-1])
    feats = {name: r.mean(axis=(1, 2)) for name, r in zip(cnn.CONV_LAYERS, rs)}
    feats["fc1"] = fc1
    return cnn.readout(params, fc1), feats

  return base.LearningRule(init, update, evaluate)


def protocol_optimizer(
  *, steps_per_epoch: int, epochs: int, lr_w: float = 1e-3, head_learning_rate: float = 1e-3
) -> optax.GradientTransformation:
  """Recognition convs: plain SGD with `lr_w` on the local direction; fc1/fc2: Adam(1e-3); BN affine: frozen."""
  del steps_per_epoch, epochs
  return _local.split_optimizer(
    {"conv": optax.sgd(lr_w), "head": optax.adam(head_learning_rate), "bn": optax.set_to_zero()}
  )
