"""Training steps per second on this machine: single seed, 5 seeds vmapped, 5 seeds sequential, and a naive vmap.

    python benchmarks/train_steps.py [--seeds 5] [--steps 6] [--rules backprop,...]

Every row runs the same protocol step (batch 128, 32 px, the full 32/64/128 CNN, Adam) inside one process, side by
side, so the ratios are comparable. "naive lax.conv" swaps leut's per-seed `conv3x3` for a plain
`lax.conv_general_dilated`, which XLA:CPU turns into a grouped convolution once the seed axis is vmapped (the known
performance trap). `--flax` adds the same network written as a flax.linen module (nn.Conv, nn.BatchNorm, nn.Dense,
nn.Dropout) trained by backprop through `leut.models.linen`: what leut's own blocks would cost as linen modules.
For feedback alignment, "unfused blocks" times its step on the unfused layers (`conv3x3_feedback`, autodiff of
BatchNorm, ReLU and pool): FA's path before it took the fused block with a feedback kernel.
"""

from __future__ import annotations

import argparse
import functools
import time

import jax
import jax.numpy as jnp
import numpy as np

from leut import rules
from leut.models import cnn, network
from leut.rules import backprop
from leut.train import batches, loop


def xla_conv(x, kernel):
  return jax.lax.conv_general_dilated(x, kernel, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))


NAIVE = cnn.network(conv_impl=xla_conv)  # the protocol CNN with a plain lax.conv in every block


def unfused(net):
  """`net` with every block on its unfused layers in training (the path `taps=True` takes)."""
  blocks = [b._replace(apply=functools.partial(b.apply, taps=True)) for b in net.blocks]
  return network.sequential(net.name, net.init, blocks, net.head, net.readout, net.linear_layers)


def flax_protocol_cnn():
  """The protocol CNN as a flax.linen module, as a leut `Network` (scored layer: fc1)."""
  import flax.linen as nn

  from leut.models import linen

  class ProtocolCNN(nn.Module):
    @nn.compact
    def __call__(self, x, *, train: bool):
      for i, width in enumerate((32, 64, 128), start=1):
        x = nn.Conv(width, (3, 3), padding=1, use_bias=False, name=f"conv{i}")(x)
        x = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, name=f"bn{i}")(x)
        x = nn.max_pool(nn.relu(x), (2, 2), strides=(2, 2))
      x = nn.relu(nn.Dense(512, name="fc1")(x.reshape(x.shape[0], -1)))
      x = nn.Dropout(0.3, deterministic=not train)(x)
      return nn.Dense(10, name="fc2")(x)

  return linen.network(ProtocolCNN(), ("fc1",))


def time_segment(trainer, keys, steps, repeats=2):
  state = trainer.init_all(keys)
  state, _ = trainer.run_segment(state, keys, steps)  # compile
  jax.block_until_ready(state)
  best = float("inf")
  for _ in range(repeats):
    t0 = time.perf_counter()
    state, m = trainer.run_segment(state, keys, steps)
    jax.block_until_ready((state, m))
    best = min(best, time.perf_counter() - t0)
  return best


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--seeds", type=int, default=5)
  ap.add_argument("--steps", type=int, default=6)
  ap.add_argument("--rules", default="backprop")
  ap.add_argument("--flax", action="store_true", help="also time backprop on the protocol CNN as a flax.linen module")
  args = ap.parse_args()
  rng = np.random.default_rng(0)
  data = batches.TrainData(
    jnp.asarray(rng.integers(0, 256, (4096, 32, 32, 3), dtype=np.uint8)),
    jnp.asarray(rng.integers(0, 10, 4096).astype(np.int32)),
  )
  kw = dict(n_subset=2048, batch_size=128)
  print(
    f"device: {jax.devices()[0].device_kind}, {jax.device_count()} device(s); batch 128, 32 px, "
    f"{args.steps} steps per timing, best of 2"
  )
  print("| rule | variant | seeds | seconds | seed-steps/s | images/s | vs sequential |")
  print("|---|---|---|---|---|---|---|")
  for name in args.rules.split(","):
    rule, tx = rules.make(name, {}, steps_per_epoch=16, epochs=40)
    trainer = loop.make_trainer(rule, tx, data, **kw)
    one = time_segment(trainer, loop.seed_keys(0, 1), args.steps)
    keys = loop.seed_keys(0, args.seeds)
    vm = time_segment(trainer, keys, args.steps)
    seq = one * args.seeds  # the same work as a Python loop over seeds
    rows = [
      ("single seed", 1, one),
      (f"sequential x{args.seeds}", args.seeds, seq),
      (f"vmapped x{args.seeds}", args.seeds, vm),
    ]
    if name == "backprop":
      naive = loop.make_trainer(backprop.backprop(NAIVE), tx, data, network=NAIVE, **kw)
      rows.append((f"naive lax.conv vmapped x{args.seeds}", args.seeds, time_segment(naive, keys, args.steps)))
      rows.append(("naive lax.conv single seed", 1, time_segment(naive, loop.seed_keys(0, 1), args.steps)))
    if name == "feedback_alignment":
      slow = unfused(cnn.network())
      fa_unfused = loop.make_trainer(rules.make(name, {}, steps_per_epoch=16, epochs=40, network=slow)[0], tx, data,
                                     network=slow, **kw)  # fmt: skip
      rows.append((f"unfused blocks vmapped x{args.seeds}", args.seeds, time_segment(fa_unfused, keys, args.steps)))
      rows.append(("unfused blocks single seed", 1, time_segment(fa_unfused, loop.seed_keys(0, 1), args.steps)))
    if name == "backprop" and args.flax:
      net = flax_protocol_cnn()
      flax_trainer = loop.make_trainer(backprop.backprop(net), tx, data, network=net, **kw)
      rows.append(
        (f"flax.linen module vmapped x{args.seeds}", args.seeds, time_segment(flax_trainer, keys, args.steps))
      )
      rows.append(("flax.linen module single seed", 1, time_segment(flax_trainer, loop.seed_keys(0, 1), args.steps)))
    for variant, s, sec in rows:
      rate = s * args.steps / sec
      print(
        f"| {name} | {variant} | {s} | {sec:.2f} | {rate:.2f} | {rate * 128:.0f} | "
        f"{(seq / sec if s == args.seeds else float('nan')):.2f} |"
      )


if __name__ == "__main__":
  main()
