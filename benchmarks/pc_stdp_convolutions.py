"""Predictive coding and STDP on the per-seed direct convolution against the batched im2col one, side by side.

    python benchmarks/pc_stdp_convolutions.py [--rounds 2] [--seeds 5] [--steps 2] [--stimuli 8]

Two arms, each in its own fresh process, alternating (so a change of load hits both alike):
- `per_seed`: leut as it is: `layers.conv3x3` and its two adjoints (`conv3x3_input_grad`, `conv3x3_kernel_grad`,
  which are predictive coding's weight updates and STDP's correlations through `rules._local`) run one direct
  XLA:CPU convolution per seed under the seed vmap, with the hand-written VJP.
- `im2col`: the same three functions as nine shifted slices and one matrix product, differentiated by JAX (what
  `conv3x3` was before it became the per-seed convolution); under the seed vmap a batched matrix product.
  The fused training-mode block (`conv_bn_relu_pool`, predictive coding's one feedforward pass per step) is the
  per-seed one in both arms.

Each arm times the protocol training step (batch 128, 32 px, the 32/64/128 CNN, the rule's protocol optimiser and
defaults: 20 inference steps, 10 spike time steps; `--steps` steps after a compile, best of 2) of predictive coding
and STDP for `--seeds` seeds vmapped, and predictive coding's readout at 224 px (its 20-step inference on
`--stimuli` stimuli for every seed, as `leut evaluate` extracts features; best of 2 after a compile). Prints one
Markdown table: per arm and round, and the per_seed / im2col ratio of the medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ARMS = ("im2col", "per_seed")


def _use_im2col() -> None:
  """Swap the per-seed convolution and its adjoints for im2col + matmul with JAX's autodiff (the `im2col` arm)."""
  import jax
  import jax.numpy as jnp

  from leut.models import layers

  def kernel_grad(x_NxHxWxC, g_NxHxWxO):
    cols_NxHxWx9C = layers.patches3x3(x_NxHxWxC)
    c_in, c_out = x_NxHxWxC.shape[-1], g_NxHxWxO.shape[-1]
    return jnp.einsum("nhwk,nhwo->ko", cols_NxHxWx9C, g_NxHxWxO).reshape(3, 3, c_in, c_out)

  def input_grad(g_NxHxWxO, kernel_3x3xCxO):
    x_shape = g_NxHxWxO.shape[:-1] + (kernel_3x3xCxO.shape[2],)
    _, pullback = jax.vjp(lambda x: layers.conv3x3_im2col(x, kernel_3x3xCxO), jnp.zeros(x_shape, g_NxHxWxO.dtype))
    return pullback(g_NxHxWxO)[0]

  layers.conv3x3 = layers.conv3x3_im2col
  layers.conv3x3_kernel_grad = kernel_grad
  layers.conv3x3_input_grad = input_grad


def _best(fn, repeats: int = 2) -> float:
  import jax

  jax.block_until_ready(fn())  # compile
  best = float("inf")
  for _ in range(repeats):
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    best = min(best, time.perf_counter() - t0)
  return best


def worker(arm: str, seeds: int, steps: int, stimuli: int) -> dict[str, float]:
  if arm == "im2col":
    _use_im2col()
  import jax.numpy as jnp
  import numpy as np

  from leut import rules
  from leut.evaluate import extract
  from leut.train import batches, loop

  rng = np.random.default_rng(0)
  data = batches.TrainData(
    jnp.asarray(rng.integers(0, 256, (4096, 32, 32, 3), dtype=np.uint8)),
    jnp.asarray(rng.integers(0, 10, 4096).astype(np.int32)),
  )
  keys = loop.seed_keys(0, seeds)
  out = {}
  for name in ("predictive_coding", "stdp"):
    rule, tx = rules.make(name, {}, steps_per_epoch=16, epochs=40)
    trainer = loop.make_trainer(rule, tx, data, n_subset=2048, batch_size=128)
    holder = [trainer.init_all(keys)]  # run_segment donates its state: each call continues from the last

    def segment():
      holder[0], metrics = trainer.run_segment(holder[0], keys, steps)  # noqa: B023
      return holder[0], metrics

    sec = _best(segment)
    state = holder[0]
    out[f"train {name}, {seeds} seeds (seed-steps/s)"] = seeds * steps / sec
    if name == "predictive_coding":
      images = rng.normal(size=(stimuli, 224, 224, 3)).astype(np.float32)
      sec = _best(lambda: extract(rule.represent, state, images, stimuli)[1])  # noqa: B023
      out[f"predictive_coding readout at 224 px, {seeds} seeds (stimulus-seeds/s)"] = seeds * stimuli / sec
  return out


def main():
  ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument("--rounds", type=int, default=2)
  ap.add_argument("--seeds", type=int, default=5)
  ap.add_argument("--steps", type=int, default=2)
  ap.add_argument("--stimuli", type=int, default=8)
  ap.add_argument("--worker", choices=ARMS, help=argparse.SUPPRESS)
  args = ap.parse_args()
  if args.worker:
    print(json.dumps(worker(args.worker, args.seeds, args.steps, args.stimuli)))
    return
  root = Path(__file__).resolve().parents[1]
  runs = {arm: [] for arm in ARMS}
  loads = []
  for r in range(args.rounds):
    for arm in ARMS[:: 1 if r % 2 == 0 else -1]:
      cmd = [sys.executable, str(Path(__file__).resolve()), f"--worker={arm}", f"--seeds={args.seeds}"]
      cmd += [f"--steps={args.steps}", f"--stimuli={args.stimuli}"]
      env = dict(os.environ, PYTHONPATH=str(root), JAX_PLATFORMS=os.environ.get("JAX_PLATFORMS", "cpu"))
      line = subprocess.run(cmd, env=env, cwd=root, check=True, capture_output=True, text=True).stdout
      runs[arm].append(json.loads(line.strip().splitlines()[-1]))
      loads.append(os.getloadavg()[0])
      print(f"{arm} round {r + 1} done, 1-min load {loads[-1]:.1f}", file=sys.stderr, flush=True)
  print(
    f"batch 128 at 32 px (training), {args.stimuli} stimuli at 224 px (readout); best of 2 after a compile; "
    f"1-min load after each worker {min(loads):.1f}-{max(loads):.1f}"
  )
  header = [f"{arm} r{r + 1}" for arm in ARMS for r in range(args.rounds)]
  print("| measure | " + " | ".join(header) + " | per_seed / im2col (medians) |")
  print("|---|" + "---|" * (len(header) + 1))
  for row in runs["per_seed"][0]:
    vals = [runs[arm][r][row] for arm in ARMS for r in range(args.rounds)]
    ratio = statistics.median(x[row] for x in runs["per_seed"]) / statistics.median(x[row] for x in runs["im2col"])
    print(f"| {row} | " + " | ".join(f"{v:.2f}" for v in vals) + f" | {ratio:.2f}x |")


if __name__ == "__main__":
  main()
