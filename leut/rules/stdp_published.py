"""STDP exactly as the published code ran it (PROTOCOL §2.6, §5.3) — for replication and audit only.

Not a faithful STDP rule (use `stdp`): the update is a channel-mean outer product broadcast over the 3x3 kernel,
its sign is inverted relative to the paper's equation, and its size (≤ 6.3e-7 per element per step) leaves the
convs essentially at their initialisation, so the features are those of random convs with backprop-trained BN.

Block order (published `STDP_CNN._forward`): conv → ReLU → BN → ReLU → MaxPool2 — the extra ReLU before BN is
reproduced exactly here (forward, training and `represent`), not approximated.
Per conv layer l with block input a (a = the normalised image for l = 1), before the update:
    pre[b, i] = mean_hw a[b, i],   post[b, o] = mean_hw ReLU(W_l * a)[b, o]   (pre-BN)
    rate = clip(sigmoid(act), 0, 1);  spikes s[t] = U[t] < rate/T for t = 0..T−1 (T = 10)
    t_first = index of the first spike, or T+1 = 11 if none
    Δt[b, i, o] = t_post[b, o] − t_pre[b, i]
    dW[i, o] = clip( mean_b( A_P e^{−max(Δt,0)/τ} − A_M e^{min(Δt,0)/τ} ), ±0.002 ),  A_P = A_M = 0.003, τ = 20
        → Δt > 0 (pre first) gives A(e^{−Δt/τ} − 1) < 0: pre-before-post *depresses* (inverted sign)
    W[:, :, i, o] ← clip(W + 5e-4 dW[i, o], −1, 1)
Then a second forward with the updated convs (BN in train mode again: running statistics move twice per step)
gives the cross-entropy whose gradient trains fc1, fc2 and the BN γ/β with Adam(1e-3); conv kernels get no
backprop gradient.

Only the 3-block protocol CNN (any widths) is accepted. leut contract: the rule returns
grads = (W − clip(W + lr dW, −1, 1))/lr for the kernels, so the optimiser's plain SGD(lr = 5e-4) lands exactly on
the published clipped weights. The published init is kaiming_normal (`config.model.init_per_rule`,
`leut.models.init_options`); leut's shared init is the default unless the config asks.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from leut.models import layers
from leut.models.network import Network
from leut.rules import _local, base

A_P = A_M = 0.003
TAU = 20.0
T_SIM = 10
LR_STDP = 5e-4
DW_CLIP = 0.002


def published_kernel(dt):
  """The implemented pair term A_P e^{−max(Δt,0)/τ} − A_M e^{min(Δt,0)/τ} (sign-inverted vs the paper)."""
  dt = jnp.asarray(dt, jnp.float32)
  return A_P * jnp.exp(-jnp.maximum(dt, 0.0) / TAU) - A_M * jnp.exp(jnp.minimum(dt, 0.0) / TAU)


def first_spike_times(key, act_BxC):
  """t of the first spike of a Bernoulli(sigmoid(act)/T) train of length T; T+1 if none (one RNG draw for all)."""
  rate = jnp.clip(jax.nn.sigmoid(act_BxC), 0.0, 1.0)
  u = jax.random.uniform(key, (T_SIM,) + act_BxC.shape)
  spikes = u < (rate / T_SIM)[None]
  t = jnp.argmax(spikes, axis=0).astype(jnp.float32)
  return jnp.where(spikes.any(axis=0), t, float(T_SIM + 1))


def channel_update(t_pre_BxI, t_post_BxO):
  """dW[i, o] = clip(mean_b K(t_post[b,o] − t_pre[b,i]), ±0.002)."""
  dt_BxIxO = t_post_BxO[:, None, :] - t_pre_BxI[:, :, None]
  return jnp.clip(jnp.mean(published_kernel(dt_BxIxO), axis=0), -DW_CLIP, DW_CLIP)


def _forward(network: Network, params, model_state, x, kernels):
  """conv → ReLU → BN(train) → ReLU → pool with the given kernels; returns (logits, [(pre, post)], new_state)."""
  h, pairs, new_state = x, [], dict(model_state)
  for block in network.blocks:
    (conv,) = block.convs
    bn, stats = params[conv.bn], model_state[conv.bn]
    out = jax.nn.relu(layers.conv3x3(h, kernels[conv.name]))
    pairs.append((h.mean(axis=(1, 2)), out.mean(axis=(1, 2))))
    y, (mean, var) = layers.batch_norm_train(out, bn["scale"], bn["bias"], stats["mean"], stats["var"])
    new_state[conv.bn] = {"mean": mean, "var": var}
    h = layers.max_pool2(jax.nn.relu(y))
  return network.readout(params, network.head(params, h)), pairs, new_state


def stdp_published(network: Network) -> base.LearningRule:
  """The published STDP (PROTOCOL §2.6) as a `LearningRule` on the protocol CNN; replication and audit only."""
  _local.needs_protocol_cnn("stdp_published", network)
  conv_names = [block.convs[0].name for block in network.blocks]

  def init(key, params):
    del key, params
    return base.EmptyState()

  def update(params, model_state, rule_state, batch: base.Batch, key):
    kernels = {name: params[name]["kernel"] for name in conv_names}
    _, pairs, state1 = _forward(network, params, model_state, batch.images, kernels)
    acts = [a for pair in pairs for a in pair]
    sizes = [a.shape[1] for a in acts]
    times = jnp.split(first_spike_times(key, jnp.concatenate(acts, axis=1)), np.cumsum(sizes[:-1]).tolist(), axis=1)
    new_kernels = {}
    for l, name in enumerate(conv_names):
      dw_IxO = channel_update(times[2 * l], times[2 * l + 1])
      new_kernels[name] = jnp.clip(kernels[name] + LR_STDP * dw_IxO[None, None], -1.0, 1.0)
    new_kernels = jax.lax.stop_gradient(new_kernels)

    def loss_fn(p):
      logits, _, new_state = _forward(network, p, state1, batch.images, new_kernels)
      return base.cross_entropy(logits, batch.labels), (logits, new_state)

    (loss, (logits, new_state)), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    for name in conv_names:
      grads[name] = dict(grads[name], kernel=(kernels[name] - new_kernels[name]) / LR_STDP)
    return base.RuleUpdate(grads, new_state, rule_state, base.classification_metrics(loss, logits, batch.labels))

  def represent(params, model_state, rule_state, x_NxHxWx3):
    """Published block order with running BN statistics (the repaired evaluation, PROTOCOL §5.1)."""
    del rule_state
    h, feats = x_NxHxWx3, {}
    for block in network.blocks:
      (conv,) = block.convs
      bn, stats = params[conv.bn], model_state[conv.bn]
      out = jax.nn.relu(layers.conv3x3(h, params[conv.name]["kernel"]))
      h = layers.max_pool2(
        jax.nn.relu(layers.batch_norm_eval(out, bn["scale"], bn["bias"], stats["mean"], stats["var"]))
      )
      feats[block.name] = h.mean(axis=(1, 2))
    fc1 = network.head(params, h)
    feats["fc1"] = fc1
    return network.readout(params, fc1), feats

  return base.LearningRule(init, update, represent)


def protocol_optimizer(*, steps_per_epoch: int, epochs: int) -> optax.GradientTransformation:
  """conv kernels: SGD(5e-4) (lands on the clipped published weights); fc1, fc2 and BN γ/β: Adam(1e-3)."""
  del steps_per_epoch, epochs
  return _local.split_optimizer({"conv": optax.sgd(LR_STDP), "head": optax.adam(1e-3), "bn": optax.adam(1e-3)})
