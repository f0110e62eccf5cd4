"""Model-to-model analyses per checkpoint × layer: each model RDM ranked twice (before) or once (after), side by side.

    python benchmarks/model_similarity.py --seeds 3 5 --repeats 5

What one checkpoint × layer × resolution × arm costs in `leut.evaluate` for the scores on all stimulus pairs plus
`ModelSimilarity.add`, at 720 stimuli (P = 258,840 pairs), 4 ROIs × 3 subjects, N seeds, on random RDMs:

  before  `score_rdms` on the all-pairs set, then `add(model_NxP=...)`, which ranks the RDMs again
          (`standardised_ranks`, as `add` did for every RDM before the ranks were shared)
  after   `score_and_rank_rdms` on the all-pairs set, then `add(z_NxP=...)` with the ranks it returned

Both paths run in one process, alternated repeat by repeat (before, after, before, ...) so that other work on the
machine hits both alike; every kernel is compiled before timing, and the table gives the median of the repeats. The
compilation that the after path saves (one `standardised_ranks` per N seeds and P pairs, once per evaluation) is
printed apart.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from leut import evaluate, rsa
from leut.scoring import model_similarity

S, R, J = 720, 4, 3


def _brain_targets(rng):
  x = rng.normal(size=(R, J, S, S)).astype(np.float32)
  brain = x + np.swapaxes(x, -1, -2)
  return evaluate.brain_targets(jnp.asarray(brain), jnp.ones((S, S), bool))


def _model_rdms(rng, n):
  feats = rng.normal(size=(n, S, 64)).astype(np.float32)
  return rsa.upper_tri(evaluate.model_rdms(jnp.asarray(feats))).block_until_ready()


def _collector():
  sim = model_similarity.ModelSimilarity(rules=["a"])
  return lambda epoch, **rdm_or_ranks: sim.add(
    rule="a", epoch=epoch, layer="conv1", resolution=S, arm="native", keep=True, **rdm_or_ranks
  )


def before(targets, rdm_NxP, add):
  scores = jax.device_get(evaluate.score_rdms(rdm_NxP, targets))
  add(1, model_NxP=rdm_NxP)
  return scores


def after(targets, rdm_NxP, add):
  *scores, z_NxP = evaluate.score_and_rank_rdms(rdm_NxP, targets)
  scores = jax.device_get(scores)
  add(1, z_NxP=z_NxP)
  return scores


def _seconds(fn):
  t0 = time.perf_counter()
  jax.block_until_ready(fn())
  return time.perf_counter() - t0


def measure(n: int, repeats: int, rng) -> dict:
  targets, rdm_NxP = _brain_targets(rng), _model_rdms(rng, n)
  t0 = time.perf_counter()
  model_similarity.standardised_ranks.lower(rdm_NxP).compile()
  ranks_compile = time.perf_counter() - t0
  add_before, add_after = _collector(), _collector()
  add_before(0, model_NxP=rdm_NxP)  # epoch 0: the drift baseline, and every kernel compiled
  add_after(0, z_NxP=evaluate.score_and_rank_rdms(rdm_NxP, targets)[2])
  before(targets, rdm_NxP, add_before), after(targets, rdm_NxP, add_after)
  z_NxP = model_similarity.standardised_ranks(rdm_NxP)
  times = {k: [] for k in ("before", "after", "add_rdm", "add_ranks")}
  for _ in range(repeats):
    times["before"].append(_seconds(lambda: before(targets, rdm_NxP, add_before)))
    times["after"].append(_seconds(lambda: after(targets, rdm_NxP, add_after)))
    times["add_rdm"].append(_seconds(lambda: add_before(1, model_NxP=rdm_NxP)))
    times["add_ranks"].append(_seconds(lambda: add_after(1, z_NxP=z_NxP)))
  return {k: statistics.median(v) for k, v in times.items()} | {"ranks_compile": ranks_compile}


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument("--seeds", type=int, nargs="+", default=[3, 5])
  ap.add_argument("--repeats", type=int, default=5)
  args = ap.parse_args(argv)
  rng = np.random.default_rng(0)
  print(
    f"S = {S} stimuli, P = {S * (S - 1) // 2:,} pairs, {R} ROIs x {J} subjects; 1-min load {os.getloadavg()[0]:.1f}"
  )
  print("| seeds | scores + similarity before s | after s | before / after | add(RDMs) s | add(ranks) s | ratio |")
  print("|---|---|---|---|---|---|---|")
  compiles = []
  for n in args.seeds:
    m = measure(n, args.repeats, rng)
    compiles.append(f"N = {n}: {m['ranks_compile']:.2f} s")
    print(
      f"| {n} | {m['before']:.3f} | {m['after']:.3f} | {m['before'] / m['after']:.2f} | "
      f"{m['add_rdm']:.3f} | {m['add_ranks']:.4f} | {m['add_rdm'] / m['add_ranks']:.0f} |"
    )
  print(f"compilation of standardised_ranks saved once per evaluation: {'; '.join(compiles)}")
  print(f"1-min load at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
  main()
