"""Cost of the stimulus bootstrap of CKA and encoding scores (`leut.scoring.metric_bootstrap`) at the protocol scale.

Per bootstrapped condition (one checkpoint, one ROI at its fixed layer): S stimuli (720), N seeds, J subjects, B
resamples (1,000). CKA: both estimators, the resampled Gram matrices of the layer (U units) and of each subject's
responses. Encoding: the held-out predictions of T reliable targets, K = 5 folds, count-weighted fold Pearson r in
float64 for every resample, then the ceiling-normalised median. Beside each, the all-stimulus score of the same
condition (`cka_scores.cka_rows`, `encoding_scores.encoding_rows`), timed the same way, so the ratio says what the
bootstrap adds. Compilation excluded (one warm-up call); the median of --reps runs.

  JAX_PLATFORMS=cpu python benchmarks/metric_bootstrap_cost.py --seeds 5 --targets 1000,4000
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import jax
import numpy as np
import pandas as pd

from leut.data.responses import ResponseData
from leut.scoring import cka_scores, encoding_scores, metric_bootstrap

WHERE = dict(rule="backprop", epoch=1, step=1, resolution=224, arm="native")


def _ints(text: str) -> list[int]:
  return [int(t) for t in text.split(",") if t]


def case(n: int, s: int, u: int, t: int, j: int):
  """(feats {layer: NxSxU}, responses of J subjects x T targets, all reliable), one shared latent."""
  rng = np.random.default_rng(0)
  latent = rng.normal(size=(s, 16))
  feats = {"fc1": (latent @ rng.normal(size=(16, u)) + rng.normal(size=(n, s, u))).astype(np.float32)}
  y = np.concatenate([latent @ rng.normal(size=(16, t)) + 2 * rng.normal(size=(s, t)) for _ in range(j)], axis=1)
  subjects = np.repeat([f"sub-{k:02d}" for k in range(j)], t)
  neuroids = pd.DataFrame({"roi": "IT", "subject": subjects, "neuroid_id": np.arange(j * t).astype(str)})
  resp = ResponseData(
    "bench",
    tuple(map(str, range(s))),
    tuple(map(str, range(s))),
    y.astype(np.float32),
    neuroids.assign(reliability=0.8),
    None,
  )
  return feats, resp


def timed(fn, reps: int) -> float:
  fn()
  times = []
  for _ in range(reps):
    t0 = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t0)
  return statistics.median(times)


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--stimuli", type=int, default=720)
  p.add_argument("--units", type=int, default=512, help="features of the layer (fc1)")
  p.add_argument("--seeds", default="5")
  p.add_argument("--subjects", type=int, default=3)
  p.add_argument("--targets", default="1000", help="reliable targets per subject")
  p.add_argument("--n-boot", type=int, default=1000)
  p.add_argument("--reps", type=int, default=2)
  args = p.parse_args()
  dev = jax.devices()[0]
  print(f"device: {dev.platform} ({dev.device_kind}), {os.cpu_count()} CPU cores")
  print(f"S={args.stimuli} U={args.units} J={args.subjects} B={args.n_boot}, one ROI at its fixed layer")
  print("| metric | seeds | targets/subject | score s | bootstrap s | bootstrap / score |")
  print("|---|---:|---:|---:|---:|---:|")
  invalid = None
  for n in _ints(args.seeds):
    invalid = np.zeros(n, bool)
    for t in _ints(args.targets):
      feats, resp = case(n, args.stimuli, args.units, t, args.subjects)
      headline = {"IT": "fc1"}

      def cka_score():
        cka_scores.cka_rows(feats, resp, invalid_N=invalid, **WHERE)

      def cka_boot():
        boot = metric_bootstrap.MetricBootstrap(n_boot=args.n_boot, rules=["backprop"])
        boot.add_cka(feats, resp, headline=headline, invalid_N=invalid, **WHERE)

      def enc_score():
        encoding_scores.encoding_rows(feats, resp, invalid_N=invalid, seed=0, **WHERE)

      def enc_both():
        boot = metric_bootstrap.MetricBootstrap(n_boot=args.n_boot, rules=["backprop"])
        encoding_scores.encoding_rows(
          feats, resp, invalid_N=invalid, seed=0, bootstrap=boot, headline=headline, **WHERE
        )

      rows = [("cka (both estimators)", timed(cka_score, args.reps), timed(cka_boot, args.reps))]
      score = timed(enc_score, args.reps)
      rows.append(("encoding", score, timed(enc_both, args.reps) - score))
      for name, s_score, s_boot in rows:
        print(f"| {name} | {n} | {t} | {s_score:.2f} | {s_boot:.2f} | {s_boot / s_score:.1f} |")


if __name__ == "__main__":
  main()
