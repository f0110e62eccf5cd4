"""Training step rates of two source trees side by side (before/after a change), alternating, in fresh processes.

    git archive a4452ac | (mkdir -p /tmp/before && tar -x -C /tmp/before)
    python benchmarks/ab_train_steps.py /tmp/before . --rounds 2 --steps 3

Each round runs, rule by rule, one worker process per tree (the order alternates between rules and rounds, so a
load change on a shared machine hits both trees alike); a worker times one rule's protocol training step exactly
as `train_steps.py` does
(batch 128, 32 px, the 32/64/128 CNN, the rule's protocol optimiser, `run_segment` of `--steps` steps after a
compile, best of 2) for 1 seed and for 5 seeds vmapped. Only APIs both trees share are used (`rules.make`,
`loop.make_trainer` with the default network). Prints one Markdown table: seed-steps/s per tree and round, and the
after/before ratio of the per-tree medians.
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


def worker(rule_names: list[str], steps: int, seeds: int) -> dict:
  import jax
  import jax.numpy as jnp
  import numpy as np

  from leut import rules
  from leut.train import batches, loop

  rng = np.random.default_rng(0)
  data = batches.TrainData(
    jnp.asarray(rng.integers(0, 256, (4096, 32, 32, 3), dtype=np.uint8)),
    jnp.asarray(rng.integers(0, 10, 4096).astype(np.int32)),
  )
  out = {}
  for name in rule_names:
    rule, tx = rules.make(name, {}, steps_per_epoch=16, epochs=40)
    trainer = loop.make_trainer(rule, tx, data, n_subset=2048, batch_size=128)
    for s in (1, seeds):
      keys = loop.seed_keys(0, s)
      state = trainer.init_all(keys)
      state, _ = trainer.run_segment(state, keys, steps)  # compile
      jax.block_until_ready(state)
      best = float("inf")
      for _ in range(2):
        t0 = time.perf_counter()
        state, m = trainer.run_segment(state, keys, steps)
        jax.block_until_ready((state, m))
        best = min(best, time.perf_counter() - t0)
      out[f"{name} x{s}"] = s * steps / best
  return out


def main():
  ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument("before")
  ap.add_argument("after")
  ap.add_argument("--rounds", type=int, default=2)
  ap.add_argument("--steps", type=int, default=3)
  ap.add_argument("--seeds", type=int, default=5)
  ap.add_argument("--rules", default="backprop,feedback_alignment,direct_feedback_alignment,predictive_coding,stdp")
  ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
  args = ap.parse_args()
  if args.worker:
    print(json.dumps(worker(args.rules.split(","), args.steps, args.seeds)))
    return
  trees = {"before": Path(args.before).resolve(), "after": Path(args.after).resolve()}
  runs = {tag: [{} for _ in range(args.rounds)] for tag in trees}
  loads = []
  for r in range(args.rounds):
    for k, rule in enumerate(args.rules.split(",")):
      for tag in list(trees)[:: 1 if (r + k) % 2 == 0 else -1]:
        env = dict(os.environ, PYTHONPATH=str(trees[tag]), JAX_PLATFORMS=os.environ.get("JAX_PLATFORMS", "cpu"))
        cmd = [sys.executable, str(Path(__file__).resolve()), ".", ".", "--worker", f"--steps={args.steps}"]
        cmd += [f"--seeds={args.seeds}", f"--rules={rule}"]
        load0 = os.getloadavg()[0]
        line = subprocess.run(cmd, env=env, cwd=trees[tag], check=True, capture_output=True, text=True).stdout
        runs[tag][r].update(json.loads(line.strip().splitlines()[-1]))
        loads.append(os.getloadavg()[0])
        print(f"{tag} {rule} round {r + 1}: load {load0:.1f} → {loads[-1]:.1f}", file=sys.stderr, flush=True)
  rows = list(runs["before"][0])
  header = [f"{tag} r{r + 1}" for tag in trees for r in range(args.rounds)]
  print(
    f"seed-steps/s, batch 128, 32 px, protocol CNN; {args.steps} timed steps, best of 2; 1-min load after each "
    f"worker {min(loads):.1f}-{max(loads):.1f}"
  )
  print("| rule, seeds | " + " | ".join(header) + " | after / before (medians) |")
  print("|---|" + "---|" * (len(header) + 1))
  for row in rows:
    vals = [runs[tag][r][row] for tag in trees for r in range(args.rounds)]
    ratio = statistics.median(x[row] for x in runs["after"]) / statistics.median(x[row] for x in runs["before"])
    print(f"| {row} | " + " | ".join(f"{v:.2f}" for v in vals) + f" | {ratio:.2f} |")


if __name__ == "__main__":
  main()
