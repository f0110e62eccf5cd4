"""Training steps per second on this machine: single seed, 5 seeds vmapped, 5 seeds sequential, and a naive vmap.

    python benchmarks/train_steps.py [--seeds 5] [--steps 6] [--rules backprop,...]

Every row runs the same protocol step (batch 128, 32 px, the full 32/64/128 CNN, Adam) inside one process, side by
side, so the ratios are comparable. "naive lax.conv" swaps leut's per-seed `conv3x3` for a plain
`lax.conv_general_dilated`, which XLA:CPU turns into a grouped convolution once the seed axis is vmapped (the known
performance trap).
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from leut import rules
from leut.models import cnn
from leut.rules import backprop
from leut.train import batches, loop


def xla_conv(x, kernel):
  return jax.lax.conv_general_dilated(x, kernel, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))


NAIVE = cnn.network(conv_impl=xla_conv)  # the protocol CNN with a plain lax.conv in every block


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
    for variant, s, sec in rows:
      rate = s * args.steps / sec
      print(
        f"| {name} | {variant} | {s} | {sec:.2f} | {rate:.2f} | {rate * 128:.0f} | "
        f"{(seq / sec if s == args.seeds else float('nan')):.2f} |"
      )


if __name__ == "__main__":
  main()
