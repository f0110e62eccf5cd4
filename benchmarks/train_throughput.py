"""Training throughput on this machine, all rows measured side by side in one run; prints one Markdown table.

    python benchmarks/train_throughput.py                                  # default: ~3 min on 2 CPU cores
    python benchmarks/train_throughput.py --seeds 1,5 --steps 1 --torch-steps 2   # quick

Rows: leut's backprop step (batch 128, 32 px, the protocol CNN 32/64/128 + fc 512, BatchNorm, dropout 0.3, clip →
L2 → Adam) with S seeds vmapped in one program (S = 1, 5, 16, 32, 64; trained in memory-planned seed chunks when S
does not fit, see `leut.train.sharding`); at the largest S <= 5 the two earlier implementations, for the ratios:
the same step compiled with XLA:CPU's default options (convolutions in YNNPACK, before
`leut.xla_cpu.network_library_fusion`) and the unfused im2col blocks with default options (before
`layers.conv_bn_relu_pool`); the same work as sequential single-seed steps; and a PyTorch eager
implementation of the same network and step in NCHW and channels_last (needs `pip install torch` in the venv; the
rows are skipped without it). Achieved FLOP/s counts the conv and fc multiply-adds of forward + backward
analytically (conv1 has no input gradient) and is given as a fraction of the float32 matmul rate measured here
with a large `jnp.dot`.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from unittest import mock

import jax
import jax.numpy as jnp
import numpy as np

from leut import rules
from leut.models import cnn, layers
from leut.rules import backprop
from leut.train import batches, loop, sharding

BATCH, PX, WIDTHS, FC, CLASSES = 128, 32, (32, 64, 128), 512, 10


def flops_per_image() -> float:
  """Forward + backward FLOPs (2 per multiply-add) of the convs and fcs for one 32-px image."""
  fwd, c_in, side, first = 0.0, 3, PX, None
  conv_fwd = []
  for c_out in WIDTHS:
    conv_fwd.append(2.0 * side * side * 9 * c_in * c_out)
    c_in, side = c_out, side // 2
  first = conv_fwd[0]
  fc_fwd = 2.0 * (WIDTHS[-1] * 16 * FC + FC * CLASSES)
  fwd = sum(conv_fwd) + fc_fwd
  return fwd + 2 * fwd - first  # forward, weight gradients, input gradients (none for the image)


UNFUSED = cnn.network(WIDTHS, FC, CLASSES, conv_impl=layers.conv3x3_im2col)  # im2col convs, autodiff BN / pool


def matmul_rate(n: int = 2048, repeats: int = 5) -> float:
  a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
  b = jax.random.normal(jax.random.key(1), (n, n), jnp.float32)
  dot = jax.jit(jnp.dot)
  dot(a, b).block_until_ready()
  best = min(_timed(lambda: dot(a, b).block_until_ready()) for _ in range(repeats))
  return 2.0 * n**3 / best


def _timed(fn) -> float:
  t0 = time.perf_counter()
  fn()
  return time.perf_counter() - t0


def leut_rate(trainer, n_seeds: int, steps: int, chunk: int) -> float:
  """Seed-steps per second of `steps` steps for `n_seeds` seeds (after a compile-and-warm-up segment)."""
  keys = sharding.seed_keys(0, n_seeds)
  state = sharding.reshard(trainer.init_all(keys), n_seeds)
  state, m = sharding.run_chunked(trainer.run_segment, state, keys, steps, chunk)
  jax.block_until_ready((state, m))
  t0 = time.perf_counter()
  state, m = sharding.run_chunked(trainer.run_segment, state, keys, steps, chunk)
  jax.block_until_ready((state, m))
  return n_seeds * steps / (time.perf_counter() - t0)


def torch_rate(steps: int, channels_last: bool) -> float:
  import torch
  from torch import nn

  torch.manual_seed(0)
  torch.set_num_threads(os.cpu_count() or 1)

  def block(c_in, c_out):
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(), nn.MaxPool2d(2)]

  model = nn.Sequential(
    *block(3, WIDTHS[0]),
    *block(WIDTHS[0], WIDTHS[1]),
    *block(WIDTHS[1], WIDTHS[2]),
    nn.AdaptiveAvgPool2d(4),
    nn.Flatten(),
    nn.Linear(WIDTHS[2] * 16, FC),
    nn.ReLU(),
    nn.Dropout(0.3),
    nn.Linear(FC, CLASSES),
  )
  opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
  x = torch.randn(BATCH, 3, PX, PX)
  y = torch.randint(0, CLASSES, (BATCH,))
  if channels_last:
    model = model.to(memory_format=torch.channels_last)
    x = x.contiguous(memory_format=torch.channels_last)
  model.train()

  def step():
    opt.zero_grad(set_to_none=True)
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()

  for _ in range(2):
    step()
  t0 = time.perf_counter()
  for _ in range(steps):
    step()
  return steps / (time.perf_counter() - t0)


def main():
  ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument("--seeds", default="1,5,16,32,64", help="vmapped seed counts")
  ap.add_argument("--steps", type=int, default=4, help="timed steps per seed count (after one warm-up segment)")
  ap.add_argument("--torch-steps", type=int, default=12)
  ap.add_argument("--seed-chunk", type=int, default=0, help="seeds per chunk (0 = auto memory planning)")
  args = ap.parse_args()
  counts = [int(s) for s in args.seeds.split(",")]

  rng = np.random.default_rng(0)
  data = batches.TrainData(
    jnp.asarray(rng.integers(0, 256, (4096, PX, PX, 3), dtype=np.uint8)),
    jnp.asarray(rng.integers(0, CLASSES, 4096).astype(np.int32)),
  )
  rule, tx = rules.make("backprop", {}, steps_per_epoch=16, epochs=40)
  trainer = loop.make_trainer(rule, tx, data, n_subset=2048, batch_size=BATCH)

  peak = matmul_rate()
  fpi = flops_per_image()
  load0 = os.getloadavg()[0]
  rows = []  # (implementation, seeds, seed-steps/s, note)
  single = leut_rate(trainer, 1, args.steps, 1)
  for s in counts:
    chunk = sharding.plan_seed_chunk(args.seed_chunk, trainer.run_segment, trainer.abstract_state, s, args.steps)
    rate = single if s == 1 else leut_rate(trainer, s, args.steps, chunk)
    rows.append((f"leut vmapped x{s}", s, rate, "" if chunk >= s else f"in chunks of {chunk}"))
  few = max([s for s in counts if s <= 5] or [1])
  with mock.patch.object(loop, "network_jit", jax.jit):  # XLA:CPU's default options, as before
    default_options = loop.make_trainer(rule, tx, data, n_subset=2048, batch_size=BATCH)
    unfused = loop.make_trainer(backprop.backprop(UNFUSED), tx, data, n_subset=2048, batch_size=BATCH, network=UNFUSED)
  rows.append(
    (
      f"leut vmapped x{few}, XLA:CPU default options (before)",
      few,
      leut_rate(default_options, few, args.steps, few),
      "convolutions in YNNPACK",
    )
  )
  rows.append(
    (
      f"leut vmapped x{few}, unfused im2col blocks (first)",
      few,
      leut_rate(unfused, few, args.steps, few),
      "im2col convolutions",
    )
  )
  rows.append(("leut sequential single-seed steps (any S)", 1, single, "S x one-seed time"))
  try:
    import torch

    for cl in (False, True):
      rows.append(
        (
          f"PyTorch {torch.__version__} eager, {'channels_last' if cl else 'NCHW'}",
          1,
          torch_rate(args.torch_steps, cl),
          f"{torch.get_num_threads()} threads",
        )
      )
  except ImportError:
    rows.append(("PyTorch eager", 1, float("nan"), "torch not installed: skipped"))
  load1 = os.getloadavg()[0]

  print(
    f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, jax {jax.__version__} "
    f"({jax.devices()[0].platform}, {jax.device_count()} device(s)); batch {BATCH}, {PX} px; "
    f"{fpi * BATCH / 1e9:.2f} GFLOP per seed-step (fwd+bwd, analytic); float32 matmul rate "
    f"(2048^3 jnp.dot) {peak / 1e9:.1f} GFLOP/s; 1-min load {load0:.1f} at start, {load1:.1f} at end"
  )
  print("| implementation | seeds | seed-steps/s | images/s | vs sequential JAX | GFLOP/s | of matmul rate | note |")
  print("|---|---|---|---|---|---|---|---|")
  for name, s, rate, note in rows:
    flops = rate * BATCH * fpi
    print(
      f"| {name} | {s} | {rate:.2f} | {rate * BATCH:.0f} | {rate / single:.2f}x | {flops / 1e9:.1f} | "
      f"{flops / peak:.0%} | {note} |"
    )


if __name__ == "__main__":
  main()
