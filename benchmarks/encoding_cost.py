"""Evaluation cost of cross-validated ridge encoding models (`leut.encoding.encoding_scores`) at the protocol scale.

Workload per checkpoint: S stimuli (720), L layers (4: conv1-3 and fc1, mean readout: 32/64/128/512 units), N seeds
(5-32), T targets (thousands of voxels or sites), K folds (5), a grid of penalties (10). One call scores every seed,
fold and penalty of one layer; the script times it per layer width (compile excluded, the median of --reps runs)
and sums the layers.

  JAX_PLATFORMS=cpu python benchmarks/encoding_cost.py --seeds 5 --targets 1000
  python benchmarks/encoding_cost.py --seeds 5,32 --targets 2000,8000 --seed-batch 8   # on an accelerator

Columns: seconds per layer width, the total for the layers, an estimate of the floating-point work (SVD of the
S x U training features per fold, then per penalty the leave-one-out residuals S x r x T, plus the predictions),
and the peak working set of the penalty loop (seed_batch x K x lambda_batch x S x T floats).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from leut.encoding import encoding_scores, kfold_test_masks


def _ints(text: str) -> list[int]:
  return [int(t) for t in text.split(",") if t]


def flops(n: int, s: int, u: int, t: int, k: int, n_lambda: int) -> float:
  """Rough count: per seed and fold, a thin SVD (~4 s u r) and r x T projections, then per penalty the residuals
  and leverages (2 s r T), plus the predictions (2 s u r + 2 s r T)."""
  r = min(s, u)
  per_fold = 4 * s * u * r + 2 * s * r * t + n_lambda * 2 * s * r * t + 2 * s * u * r + 2 * s * r * t
  return n * k * per_fold


def time_layer(n, s, u, t, k, lambdas, *, seed_batch, lambda_batch, reps) -> tuple[float, float]:
  rng = np.random.default_rng(0)
  latent = rng.normal(size=(s, 16)).astype(np.float32)
  feats = jnp.asarray(latent @ rng.normal(size=(16, u)) + rng.normal(size=(n, s, u)), jnp.float32)
  targets = jnp.asarray(latent @ rng.normal(size=(16, t)) + 2 * rng.normal(size=(s, t)), jnp.float32)
  masks = jnp.asarray(kfold_test_masks(s, k))

  def run():
    out = encoding_scores(feats, targets, masks, lambdas, seed_batch=seed_batch, lambda_batch=lambda_batch)
    return jax.block_until_ready(out.r_NxT)

  t0 = time.perf_counter()
  run()
  compile_s = time.perf_counter() - t0
  times = []
  for _ in range(reps):
    t0 = time.perf_counter()
    run()
    times.append(time.perf_counter() - t0)
  return compile_s, statistics.median(times)


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--stimuli", type=int, default=720)
  p.add_argument("--units", default="32,64,128,512", help="features per layer (mean readout of conv1-3, fc1)")
  p.add_argument("--seeds", default="5")
  p.add_argument("--targets", default="1000")
  p.add_argument("--folds", type=int, default=5)
  p.add_argument("--lambdas", type=int, default=10)
  p.add_argument("--seed-batch", type=int, default=None)
  p.add_argument("--lambda-batch", type=int, default=None)
  p.add_argument("--reps", type=int, default=2)
  args = p.parse_args()
  lambdas = jnp.logspace(-2, 5, args.lambdas)
  units = _ints(args.units)
  dev = jax.devices()[0]
  print(f"device: {dev.platform} ({dev.device_kind}), {len(jax.devices())} device(s), {os.cpu_count()} CPU cores")
  print(f"S={args.stimuli} K={args.folds} lambdas={args.lambdas} layers={units}")
  per_layer = " | ".join(f"U={u} s" for u in units)
  print(f"| seeds | targets | {per_layer} | all layers s | GFLOP | work set MB | compile s |")
  print("|---:|---:|" + "---:|" * (len(units) + 4))
  for n in _ints(args.seeds):
    for t in _ints(args.targets):
      per, compiles, work = [], [], 0.0
      for u in units:
        c, s_run = time_layer(
          n,
          args.stimuli,
          u,
          t,
          args.folds,
          lambdas,
          seed_batch=args.seed_batch,
          lambda_batch=args.lambda_batch,
          reps=args.reps,
        )
        per.append(s_run)
        compiles.append(c)
        work += flops(n, args.stimuli, u, t, args.folds, args.lambdas)
      sb = args.seed_batch or n
      lb = args.lambda_batch or args.lambdas
      mb = sb * args.folds * lb * args.stimuli * t * 4 / 1e6
      cells = " | ".join(f"{x:.2f}" for x in per)
      print(f"| {n} | {t} | {cells} | {sum(per):.2f} | {work / 1e9:.0f} | {mb:.0f} | {sum(compiles):.1f} |")


if __name__ == "__main__":
  main()
