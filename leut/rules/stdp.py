"""Pair-based spike-timing-dependent plasticity (STDP) on the conv layers, rate-coded spikes, local 3x3 patches.

Bi & Poo (1998), J. Neurosci. 18:10464; Song, Miller & Abbott (2000), Nat. Neurosci. 3:919 (pair-based, all-to-all
pairs, exponential window); the trace formulation is Morrison, Diesmann & Gerstner (2008), Biol. Cybern. 98:459.

Spikes. For each convolution W of the network (`Block.convs`, read with `block.apply(..., taps=True)`), the
pre-synaptic neurons are the elements of its input a (the image for the first one) and the post-synaptic neuron at
(h, w, o) is its own firing rate ReLU(BN(W * a))[h, w, o] (before any pool; in a residual unit, before the skip is
added). Each is rate-coded over `time_steps` steps of Bernoulli spikes with per-step probability
p = max_prob · ρ(a), ρ = sigmoid for the signed normalised image and tanh for the non-negative hidden rates.

Pair rule. A pre spike at t_pre and a post spike at t_post, Δt = t_post − t_pre, change the weight by

    K(Δt) = +A+ · exp(−Δt/τ+)   if Δt > 0   (pre before post: potentiation)
            −A− · exp(+Δt/τ−)   if Δt < 0   (post before pre: depression),     0 if Δt = 0,

summed over all pairs (all-to-all). With traces x_pre(t) = Σ_{t'<t} s_pre(t') e^{−(t−t')/τ+} and likewise y_post
with τ−, the sum is exactly Σ_t [A+ s_post(t) x_pre(t) − A− s_pre(t) y_post(t)]; `stdp_correlation` computes it as
one correlation of the time-filtered pre trains with the post trains.

Locality over patches: pre = the 3x3xC_in input patch at (h, w), post = output channel o at (h, w), so

    C_l[dy, dx, c, o] = mean_{n,h,w} Σ_pairs K(Δt)       a full 3x3xC_in xC_out update, not a channel mean
                                                        (a 1x1 projection of a residual unit: pre = the C_in vector).

Competition and bounds (per layer, w_o = W_l[..., o] the filter of output channel o):
  1. C_o ← C_o − mean_{o'} C_{o'}: heterosynaptic competition, each pre-synaptic input's total change over the
     post-synaptic channels is zero. Without it every filter is pushed along the same mean-rate direction and the
     filters of conv2/conv3 collapse onto one another (mean |cos| 0.05 → 0.9 in 150 steps, measured).
  2. C⊥_o = C_o − (⟨C_o, w_o⟩/‖w_o‖²) w_o: the radial part is removed, so STDP rotates filters (Oja-style) and
     does not grow them.
  3. ΔW = ‖W‖_F · C⊥/‖C⊥‖_F − λ(‖w_o‖/‖w_o⁽⁰⁾‖ − 1) w_o: a layer-wise normalised step (the learning rate is
     the relative change per step, whatever the spike statistics, resolution or A±; relative sizes across the
     layer's filters are kept) plus a pull of each filter's norm back to its initial norm (kept in the rule state).
Measured on random images at the default step (1e-3 per step): filters stay at their norms, conv2/conv3 move
~25% in 300 steps, and their mean |cos| rises slowly (0.05 → 0.1–0.2 by 300 steps at 2e-3): competition here is
only heterosynaptic; lateral inhibition / explicit decorrelation is not modelled.
Note on the sign balance: rate-coded trains have no causal timing, so the expected drive is
(A+S+ − A−S−) · E[p_pre p_post] (S± the window sums); the default A+ > A− makes it Hebbian on rates.

Readout (PROTOCOL §2.6): conv kernels get only STDP (plain SGD at `learning_rate` on −ΔW); fc1, fc2 and the BN
affine are trained by backprop of the cross-entropy through the network with the conv kernels held fixed,
Adam(1e-3). One train-mode forward pass serves both, so BN running statistics are updated once per step.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.extend.random
import jax.numpy as jnp
import optax

from leut.models.network import Network
from leut.rules import _local, base


class STDPState(NamedTuple):
  ref_norms: Any  # state of the `bound` transform; the default's: conv layer -> C_out filter norms at initialisation


class STDPParams(NamedTuple):
  a_plus: float = 1.0
  a_minus: float = 0.8
  tau_plus: float = 20.0
  tau_minus: float = 20.0


DEFAULT_WINDOW = STDPParams()


def pair_kernel(dt, stdp: STDPParams = DEFAULT_WINDOW):
  """K(Δt): the weight change of one pre/post pair, Δt = t_post − t_pre (time steps)."""
  dt = jnp.asarray(dt, jnp.float32)
  return jnp.where(
    dt > 0,
    stdp.a_plus * jnp.exp(-dt / stdp.tau_plus),
    jnp.where(dt < 0, -stdp.a_minus * jnp.exp(dt / stdp.tau_minus), 0.0),
  )


def stdp_correlation(pre_TxNxHxWxC, post_TxNxHxWxO, stdp: STDPParams = DEFAULT_WINDOW, *, patches: bool = True):
  """Σ_pairs K(t_post − t_pre) over all pre/post spike pairs, averaged over (n, h, w).

  The pair sum is bilinear in the two trains, so the time kernel moves onto the pre-synaptic side:

      Σ_{t, t'} K(t − t') s_pre(t') ⊗ s_post(t) = Σ_t d(t) ⊗ s_post(t),   d(t) = Σ_{t'} K(t − t') s_pre(t')

  with `K_TxT[t, t'] = K(t − t')` (the traces' sum, Morrison et al. 2008, written as one T x T matrix: its strictly
  lower part is the pre trace scaled by A+, its upper part the post trace by −A−). The result is one correlation
  whose batch runs over (time, image), not 2T: half the multiply-adds of the two trace terms.

  With `patches` the pre-synaptic index runs over 3x3 input patches (result `3 x 3 x C x O`); without it, pre and
  post are plain vectors (`pre_TxNxC`, `post_TxNxO` → `C x O`), which is what the closed-form tests use.
  """
  t_T = jnp.arange(pre_TxNxHxWxC.shape[0])
  kernel_TxT = pair_kernel(t_T[:, None] - t_T[None, :], stdp)
  merged = lambda a: a.reshape((-1,) + a.shape[2:])  # noqa: E731 - (time, image) as one batch axis
  drive, post = merged(jnp.tensordot(kernel_TxT, pre_TxNxHxWxC, axes=1)), merged(post_TxNxHxWxO)
  positions = post_TxNxHxWxO[0].size // post_TxNxHxWxO.shape[-1]
  if not patches:
    return drive.T @ post / positions
  return _chunked_patch_correlation(drive, post) / positions


_CORRELATION_CHUNK = 64


def _chunked_patch_correlation(x_BxHxWxC, delta_BxHxWxO):
  """`patch_correlation` summed over chunks of at most 64 batch entries in a `scan`: XLA:CPU's weight-gradient
  convolution gets slower per image as its batch grows, so chunks make the STDP step faster than one correlation
  (measurements in `benchmarks/README.md`)."""
  b = x_BxHxWxC.shape[0]
  chunk = max(d for d in range(1, min(b, _CORRELATION_CHUNK) + 1) if b % d == 0)
  xs = x_BxHxWxC.reshape((b // chunk, chunk) + x_BxHxWxC.shape[1:])
  ds = delta_BxHxWxO.reshape((b // chunk, chunk) + delta_BxHxWxO.shape[1:])
  acc0 = jnp.zeros((3, 3, x_BxHxWxC.shape[-1], delta_BxHxWxO.shape[-1]), x_BxHxWxC.dtype)
  acc, _ = jax.lax.scan(lambda acc, xd: (acc + _local.patch_correlation(*xd), None), acc0, (xs, ds))
  return acc


def counter_bits(key, shape: tuple[int, ...]) -> jax.Array:
  """Random uint32 words of `shape`: Threefry-2x32 (Salmon et al. 2011, SC'11) in counter mode, each cipher call on
  a pair of counters giving two words, under a cipher key of two words drawn from `key`.

  The construction of `jax.random.bits` without `jax_threefry_partitionable` (the default in current jax spends one
  cipher call per output word instead): faster on CPU (`benchmarks/README.md`). A pure function of the key
  and the counters, so every backend, device count and sharding draws the same words.
  """
  cipher_key = jax.random.bits(key, (2,), jnp.uint32)
  counters = jax.lax.iota(jnp.uint32, math.prod(shape))
  return jax.extend.random.threefry_2x32(cipher_key, counters).reshape(shape)


def rate_spikes(key, rates, time_steps: int, max_prob: float):
  """Bernoulli spike trains `T x rates.shape` with per-step probability p = max_prob · clip(rates, 0, 1).

  spike = u < round(p · 2¹⁶) with u uniform on {0, ..., 2¹⁶ − 1}, two u from each random 32-bit word: P(spike) is
  p rounded to a multiple of 2⁻¹⁶ (|error| ≤ 7.7e-6), from half the random bits of a float-uniform draw. The words
  come from `counter_bits` and are split by a bitcast: the draws were a large part of an STDP step, and both halve
  their cost per spike (measurements in `benchmarks/README.md`).
  """
  n = rates.size
  words_TxW = counter_bits(key, (time_steps, -(-n // 2)))
  # each word's two 16-bit halves as two adjacent elements (a bitcast: no arithmetic, nothing to fuse badly)
  u16_TxN = jax.lax.bitcast_convert_type(words_TxW, jnp.uint16).reshape(time_steps, -1)[:, :n].astype(jnp.uint32)
  threshold_N = jnp.round(jnp.clip(rates, 0.0, 1.0).reshape(-1) * (max_prob * 65536.0)).astype(jnp.uint32)
  return (u16_TxN < threshold_N[None, :]).astype(jnp.float32).reshape((time_steps,) + rates.shape)


def rate_spikes_many(key, rates_list, time_steps: int, max_prob: float):
  """`rate_spikes` for several rate arrays from one random draw (one RNG op compiles far faster than six)."""
  flat = jnp.concatenate([r.reshape(-1) for r in rates_list])
  spikes_TxF = rate_spikes(key, flat, time_steps, max_prob)
  out, start = [], 0
  for r in rates_list:
    out.append(spikes_TxF[:, start : start + r.size].reshape((time_steps,) + r.shape))
    start += r.size
  return out


def bounded_direction(c_3x3xCxO, kernel_3x3xCxO, ref_norm_O, norm_decay: float):
  """ΔW = ‖W‖·C⊥/‖C⊥‖ − λ(‖w_o‖/‖w_o⁽⁰⁾‖ − 1) w_o, C⊥ = C with each filter's radial component removed."""
  w_KxO = kernel_3x3xCxO.reshape(-1, kernel_3x3xCxO.shape[-1])
  c_KxO = c_3x3xCxO.reshape(w_KxO.shape)
  sq_O = jnp.sum(jnp.square(w_KxO), axis=0)
  tangent_KxO = c_KxO - (jnp.sum(c_KxO * w_KxO, axis=0) / sq_O)[None, :] * w_KxO
  scale = jnp.sqrt(jnp.sum(sq_O) / (jnp.sum(jnp.square(tangent_KxO)) + 1e-30))
  restore_O = norm_decay * (jnp.sqrt(sq_O) / ref_norm_O - 1.0)
  return (scale * tangent_KxO - restore_O[None, :] * w_KxO).reshape(kernel_3x3xCxO.shape)


def filter_norm_bound(norm_decay: float = 1.0) -> optax.GradientTransformation:
  """STDP's competition-and-bounds step 3 as an optax transformation over {conv: centred correlation C}:
  `bounded_direction` per conv, with each filter's initial norm (from `init`, given the kernels) as its state.

  Its output is the ascent direction ΔW; replace it (`stdp(..., bound=...)`) by any transformation of the same
  tree, e.g. `optax.identity()` for the raw centred correlation.
  """

  def init_fn(kernels):
    return {name: jnp.sqrt(jnp.sum(jnp.square(k), axis=(0, 1, 2))) for name, k in kernels.items()}

  def update_fn(correlations, ref_norms, kernels=None):
    if kernels is None:
      raise ValueError("filter_norm_bound needs the conv kernels as params")
    directions = {
      name: bounded_direction(c, kernels[name], ref_norms[name], norm_decay) for name, c in correlations.items()
    }
    return directions, ref_norms

  return optax.GradientTransformation(init_fn, update_fn)


def conv_correlation(pre_TxNxHxWxC, post_TxNxHxWxO, window: STDPParams, size: int):
  """`stdp_correlation` over 3x3 patches (size 3), or per position for a 1x1 convolution (size 1)."""
  if size == 3:
    return stdp_correlation(pre_TxNxHxWxC, post_TxNxHxWxO, window)
  t = pre_TxNxHxWxC.shape[0]
  flat = lambda a: a.reshape(t, -1, a.shape[-1])  # noqa: E731 - every position a sample
  c_CxO = stdp_correlation(flat(pre_TxNxHxWxC), flat(post_TxNxHxWxO), window, patches=False)
  return c_CxO.reshape(1, 1, *c_CxO.shape)


def stdp(
  network: Network,
  *,
  time_steps: int = 10,
  max_prob: float = 0.5,
  a_plus: float = 1.0,
  a_minus: float = 0.8,
  tau_plus: float = 20.0,
  tau_minus: float = 20.0,
  norm_decay: float = 1.0,
  bound: optax.GradientTransformation | None = None,
) -> base.LearningRule:
  """STDP on every convolution of `network` as a `LearningRule` (equations in the module docstring).

  Args:
    network: a network of leut blocks (`model.name` 'cnn' or 'resnet'); a flax model is refused.
    time_steps: length T of the spike trains per image.
    max_prob: per-step spike probability at rate 1.
    a_plus, a_minus, tau_plus, tau_minus: the pair window (τ in time steps).
    norm_decay: λ, the pull of each filter's norm back to its initial norm.
    bound: the optax transformation from {conv: centred correlation} to {conv: ΔW}, given the kernels as params
      (default `filter_norm_bound(norm_decay)`, steps 2-3 of the module docstring).
  The step size (relative change of each conv layer per step) is the optimiser's `learning_rate`.
  """
  base.needs_blocks("stdp", network)
  window = STDPParams(a_plus, a_minus, tau_plus, tau_minus)
  convs = [conv for block in network.blocks for conv in block.convs]
  bound = filter_norm_bound(norm_decay) if bound is None else bound

  def kernels(params):
    return {c.name: params[c.name]["kernel"] for c in convs}

  def init(key, params):
    del key
    return STDPState(bound.init(kernels(params)))

  def update(params, model_state, rule_state, batch: base.Batch, key):
    def loss_fn(p):
      logits, taps, new_state = _local.forward_fixed_kernels(network, p, model_state, batch.images)
      pairs = [(pre, post) for _, pre, post in taps]
      return base.cross_entropy(logits, batch.labels), (logits, pairs, new_state)

    (loss, (logits, pairs, new_state)), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    rates = []
    for l, (pre, post) in enumerate(jax.lax.stop_gradient(pairs)):
      rates += [jax.nn.sigmoid(pre) if l == 0 else jnp.tanh(pre), jnp.tanh(post)]
    spikes = rate_spikes_many(key, rates, time_steps, max_prob)
    centred = {}
    for l, conv in enumerate(convs):
      c = conv_correlation(spikes[2 * l], spikes[2 * l + 1], window, conv.size)
      centred[conv.name] = c - jnp.mean(c, axis=-1, keepdims=True)  # heterosynaptic competition across channels
    deltas, bound_state = bound.update(centred, rule_state.ref_norms, kernels(params))
    for conv in convs:
      grads[conv.name] = dict(grads[conv.name], kernel=-deltas[conv.name])
    metrics = base.classification_metrics(loss, logits, batch.labels)
    return base.RuleUpdate(grads, new_state, STDPState(bound_state), metrics)

  return base.LearningRule(init, update, base.feedforward(network))


def protocol_optimizer(
  *, steps_per_epoch: int, epochs: int, learning_rate: float = 1e-3, head_learning_rate: float = 1e-3
) -> optax.GradientTransformation:
  """Conv kernels: plain SGD at `learning_rate` on −ΔW (STDP only); fc1, fc2, BN affine: Adam(1e-3)."""
  del steps_per_epoch, epochs
  return _local.split_optimizer(
    {"conv": optax.sgd(learning_rate), "head": optax.adam(head_learning_rate), "bn": optax.adam(head_learning_rate)}
  )
