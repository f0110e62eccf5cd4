"""Predictive coding exactly as the published code ran it (PROTOCOL §2.5) — for replication and audit only.

This is *not* a faithful predictive-coding rule (use `predictive_coding` for that): the update of each trained
layer is a rank-1 outer product of channel means broadcast over the 3x3 kernel, only Conv1 and Conv2 learn, and
the prediction weights P2, P3 are fixed. It exists so the published numbers can be reproduced and inspected.

Feedforward init (BN in train mode): r_l = MaxPool2(ReLU(BN_l(W_l * r_{l-1}))), r_0 = x.
Inference, 10 simultaneous steps (all right-hand sides from the current r):
    pred1 = tanh(Up2(P2 ⋆ r2)),  pred2 = tanh(Up2(P3 ⋆ r3)),  e1 = r1 − pred1,  e2 = r2 − pred2
    r1 ← ReLU(r1 − 0.02 e1)
    r2 ← ReLU(r2 + 0.02 (−e2 + AvgPool2(W2 * e1)))
    r3 ← ReLU(r3 + 0.02 AvgPool2(W3 * e2))
(⋆ = ConvTranspose2d(k3, stride 1, padding 1), implemented as the equivalent 'SAME' conv: P is drawn directly in
conv form, 3x3 x C_high x C_low, U(±1/sqrt(9 C_low)) — PyTorch's ConvTranspose2d default, whose fan_in is
weight.size(1)·9 = 9·C_low; the distribution is invariant under the flip/transpose.)
Weight update (a second train-mode BN pass recomputes r1i, r2i, so bn1/bn2 running statistics move twice):
    e1 = clip(r1 − r1i, ±0.5),  e2 = clip(r2 − r2i, ±0.5)
    ΔW1[o,i,:,:] = clip(mean_{nhw} e1[o] · mean_{nhw} x[i], ±0.01),  ΔW2 likewise with e2 and the inferred r1
    W_l += 1e-4 ΔW_l  (the optimiser: plain SGD(1e-4) on −ΔW); W3, P2, P3 and BN γ/β never change.
Readout: logits = fc2(ReLU(fc1(flatten(r3)))) on the detached inferred r3; Adam(1e-3) on fc1, fc2.

Only the 3-block protocol CNN (any widths) is accepted. `represent` uses running BN statistics (the repaired v10+
behaviour, PROTOCOL §5.1); the pre-fix evaluation (batch statistics of the evaluation batch) is deliberately not
offered.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from leut.models import layers
from leut.models.network import Network, with_batch_stats
from leut.rules import _local, base

T_INF, LR_R, LR_W = 10, 0.02, 1e-4
ERR_CLIP, DW_CLIP = 0.5, 0.01


class PublishedPCState(NamedTuple):
  predict: dict  # "conv2": P2 (3x3 x C2 x C1), "conv3": P3 (3x3 x C3 x C2), conv form; fixed


def feedforward(network: Network, params, model_state, x, *, train: bool):
  h, rs, new_state = x, [], dict(model_state)
  for block in network.blocks:
    res = block.apply(params, new_state, h, train=train)
    h, new_state = res.out, with_batch_stats(new_state, res.batch_stats)
    rs.append(h)
  return tuple(rs), new_state


def infer(params, predict, rs, *, steps: int = T_INF, lr_r: float = LR_R):
  """The published 10-step simultaneous update of (r1, r2, r3)."""

  def step(rs, _):
    r1, r2, r3 = rs
    e1 = r1 - jnp.tanh(_local.upsample2(layers.conv3x3(r2, predict["conv2"])))
    e2 = r2 - jnp.tanh(_local.upsample2(layers.conv3x3(r3, predict["conv3"])))
    r1n = jax.nn.relu(r1 - lr_r * e1)
    r2n = jax.nn.relu(r2 + lr_r * (-e2 + layers.avg_pool2(layers.conv3x3(e1, params["conv2"]["kernel"]))))
    r3n = jax.nn.relu(r3 + lr_r * layers.avg_pool2(layers.conv3x3(e2, params["conv3"]["kernel"])))
    return (r1n, r2n, r3n), None

  rs, _ = jax.lax.scan(step, tuple(rs), None, length=steps)
  return rs


def channel_mean_update(err_NxHxWxO, pre_NxHxWxC):
  """clip(mean e[o] · mean pre[i], ±0.01) broadcast over the 3x3 kernel: returns `3 x 3 x C x O`."""
  outer_CxO = jnp.mean(pre_NxHxWxC, axis=(0, 1, 2))[:, None] * jnp.mean(err_NxHxWxO, axis=(0, 1, 2))[None, :]
  return jnp.broadcast_to(jnp.clip(outer_CxO, -DW_CLIP, DW_CLIP)[None, None], (3, 3) + outer_CxO.shape)


def predictive_coding_published(
  network: Network, *, inference_steps: int = T_INF, lr_r: float = LR_R
) -> base.LearningRule:
  """The published PC (PROTOCOL §2.5) as a `LearningRule` on the protocol CNN; replication and audit only."""
  _local.needs_protocol_cnn("predictive_coding_published", network)
  block1, block2, _ = network.blocks

  def init(key, params):
    del params
    k2, k3 = jax.random.split(key)
    c1, c2, c3 = (b.out_channels for b in network.blocks)
    return PublishedPCState(
      {"conv2": _local.uniform(k2, (3, 3, c2, c1), 9 * c1), "conv3": _local.uniform(k3, (3, 3, c3, c2), 9 * c2)}
    )

  def update(params, model_state, rule_state, batch: base.Batch, key):
    del key
    x = batch.images
    rs0, state1 = feedforward(network, params, model_state, x, train=True)
    r1, r2, r3 = jax.lax.stop_gradient(infer(params, rule_state.predict, rs0, steps=inference_steps, lr_r=lr_r))
    # second feedforward pass for the targets: bn1/bn2 running statistics move again.
    first = block1.apply(params, state1, x, train=True)
    second = block2.apply(params, state1, first.out, train=True)
    r1i, r2i = first.out, second.out
    new_state = with_batch_stats(with_batch_stats(state1, first.batch_stats), second.batch_stats)
    e1 = jnp.clip(r1 - r1i, -ERR_CLIP, ERR_CLIP)
    e2 = jnp.clip(r2 - r2i, -ERR_CLIP, ERR_CLIP)

    def head_loss(p):
      logits = network.readout(p, network.head(p, r3))
      return base.cross_entropy(logits, batch.labels), logits

    (loss, logits), head_grads = jax.value_and_grad(head_loss, has_aux=True)(params)
    grads = jax.tree.map(jnp.zeros_like, params)
    grads["conv1"] = {"kernel": -channel_mean_update(e1, x)}
    grads["conv2"] = {"kernel": -channel_mean_update(e2, r1)}
    grads["fc1"], grads["fc2"] = head_grads["fc1"], head_grads["fc2"]
    return base.RuleUpdate(grads, new_state, rule_state, base.classification_metrics(loss, logits, batch.labels))

  def represent(params, model_state, rule_state, x_NxHxWx3):
    rs0, _ = feedforward(network, params, model_state, x_NxHxWx3, train=False)
    rs = infer(params, rule_state.predict, rs0, steps=inference_steps, lr_r=lr_r)
    fc1 = network.head(params, rs[-1])
    feats = {b.name: r.mean(axis=(1, 2)) for b, r in zip(network.blocks, rs)}
    feats["fc1"] = fc1
    return network.readout(params, fc1), feats

  return base.LearningRule(init, update, represent)


def protocol_optimizer(*, steps_per_epoch: int, epochs: int) -> optax.GradientTransformation:
  """conv1/conv2: W += 1e-4 ΔW (SGD(1e-4); conv3 gets a zero direction); fc1, fc2: Adam(1e-3); BN: frozen."""
  del steps_per_epoch, epochs
  return _local.split_optimizer({"conv": optax.sgd(LR_W), "head": optax.adam(1e-3), "bn": optax.set_to_zero()})
