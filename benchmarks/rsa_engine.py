"""RSA engine benchmark: 1,000-resample paired stimulus bootstrap with Spearman, leut vs NumPy/SciPy vs rsatoolbox.

Workload (ANCHORS.md §1.4): 720 stimuli (258,840 pairs), 50 model RDMs, 3 subject RDMs, 1,000 stimulus-bootstrap
resamples, Spearman rho of every model against every subject in every resample (150 comparisons x 1,000).

Run (both cores as two XLA:CPU devices; leut spreads resample chunks over local devices):
  XLA_FLAGS=--xla_force_host_platform_device_count=2 /tmp/venv/bin/python benchmarks/rsa_engine.py
Options: --n-boot 1000 --n-ref 2 (reference resamples actually timed, then extrapolated) --n-rsatoolbox 2.
"""

from __future__ import annotations

import argparse
import os
import time

import jax
import numpy as np
from scipy import stats

import leut.rsa as rsa

S, M, J = 720, 50, 3


def make_rdms(seed: int = 0):
  """Correlated synthetic RDMs: features share a latent stimulus space, so rhos are non-trivial."""
  rng = np.random.default_rng(seed)
  latent = rng.normal(size=(S, 32)).astype(np.float32)
  feats_model = np.stack(
    [latent @ rng.normal(size=(32, 128)) + 3 * rng.normal(size=(S, 128)) for _ in range(M)]
  ).astype(np.float32)
  feats_subj = np.stack([latent @ rng.normal(size=(32, 200)) + 8 * rng.normal(size=(S, 200)) for _ in range(J)]).astype(
    np.float32
  )
  models = np.asarray(rsa.upper_tri(rsa.rdm(feats_model)))
  subjects = np.asarray(rsa.upper_tri(rsa.rdm(feats_subj)))
  return models, subjects


def reference_resample(models_MxP, subjects_JxP, idx_S):
  """Straightforward NumPy/SciPy: expand the resampled pairs, rank every vector, correlate (float64)."""
  iu, ju = np.triu_indices(S, k=1)
  a, b = idx_S[iu], idx_S[ju]
  keep = a != b
  a, b = np.minimum(a[keep], b[keep]), np.maximum(a[keep], b[keep])
  # position of pair (a, b) in the upper-triangle vector
  pos = a * S - a * (a + 1) // 2 + (b - a - 1)
  rm = stats.rankdata(models_MxP[:, pos], axis=1)
  rs = stats.rankdata(subjects_JxP[:, pos], axis=1)
  zm = rm - rm.mean(1, keepdims=True)
  zm /= np.linalg.norm(zm, axis=1, keepdims=True)
  zs = rs - rs.mean(1, keepdims=True)
  zs /= np.linalg.norm(zs, axis=1, keepdims=True)
  return zm @ zs.T


def time_rsatoolbox(models_MxP, subjects_JxP, n):
  try:
    import rsatoolbox
  except ImportError:
    return None
  data = rsatoolbox.rdm.RDMs(
    subjects_JxP.astype(np.float64), dissimilarity_measure="correlation", pattern_descriptors={"index": np.arange(S)}
  )
  models = [
    rsatoolbox.model.ModelFixed(
      f"m{i}",
      rsatoolbox.rdm.RDMs(models_MxP[i : i + 1].astype(np.float64), pattern_descriptors={"index": np.arange(S)}),
    )
    for i in range(M)
  ]
  t, c = time.perf_counter(), time.process_time()
  rsatoolbox.inference.eval_bootstrap_pattern(models, data, method="spearman", N=n, boot_noise_ceil=False)
  return (time.perf_counter() - t) / n, (time.process_time() - c) / n


def peak_memory(n_boot: int) -> None:
  """Peak resident memory of a long bootstrap (the streaming claim: memory does not grow with the resamples)."""
  import resource

  models, subjects = make_rdms()
  before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
  t = time.perf_counter()
  res = rsa.bootstrap(models[:5], subjects, key=jax.random.key(0), n_boot=n_boot)
  jax.block_until_ready(res.scores)
  peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
  print(
    f"{n_boot:,} resamples, {S} stimuli, 5 models x {J} subjects: {time.perf_counter() - t:.0f} s, "
    f"peak RSS {peak:.2f} GiB ({before:.2f} GiB before the bootstrap)"
  )


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--n-boot", type=int, default=1000)
  ap.add_argument("--n-ref", type=int, default=2)
  ap.add_argument("--n-rsatoolbox", type=int, default=2)
  ap.add_argument(
    "--memory-resamples",
    type=int,
    default=0,
    help="instead: run this many resamples for 5 of the models and print the peak RSS",
  )
  args = ap.parse_args()
  if args.memory_resamples:
    return peak_memory(args.memory_resamples)

  print(
    f"jax {jax.__version__}, devices {jax.local_devices()}, cpu count {os.cpu_count()}, "
    f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}"
  )
  models, subjects = make_rdms()
  idx = np.asarray(rsa.resample_indices(jax.random.key(20261002), args.n_boot, S))

  # Correctness on the first resamples, against the float64 reference.
  ref = np.stack([reference_resample(models, subjects, idx[b]) for b in range(2)], -1)

  load0 = os.getloadavg()[0]
  t, c = time.perf_counter(), time.process_time()
  res = rsa.bootstrap(models, subjects, indices_BxS=idx, method="spearman")
  jax.block_until_ready(res.scores)
  t_leut, c_leut = time.perf_counter() - t, time.process_time() - c
  err = float(np.abs(np.asarray(res.scores[..., :2]) - ref).max())

  t, c = time.perf_counter(), time.process_time()
  for b in range(args.n_ref):
    reference_resample(models, subjects, idx[b])
  t_ref, c_ref = (time.perf_counter() - t) / args.n_ref, (time.process_time() - c) / args.n_ref
  rtb = time_rsatoolbox(models, subjects, args.n_rsatoolbox) if args.n_rsatoolbox else None
  load1 = os.getloadavg()[0]

  B = args.n_boot
  rows = [(f"leut.rsa.bootstrap (all {B:,} measured, incl. compile + sort)", t_leut / B, t_leut, c_leut)]
  rows.append((f"NumPy/SciPy rankdata ({args.n_ref} resamples timed, extrapolated)", t_ref, t_ref * B, c_ref * B))
  if rtb is not None:
    rows.append(
      (
        f"rsatoolbox 0.3.2 eval_bootstrap_pattern ({args.n_rsatoolbox} timed, extrapolated)",
        rtb[0],
        rtb[0] * B,
        rtb[1] * B,
      )
    )
  else:
    why = "skipped (--n-rsatoolbox 0)" if not args.n_rsatoolbox else "not installed"
    rows.append((f"rsatoolbox eval_bootstrap_pattern: {why}", float("nan"), float("nan"), float("nan")))
  print(f"\n{S} stimuli, {M} model RDMs x {J} subjects, {B} stimulus-bootstrap resamples, Spearman")
  print(f"max |leut - float64 reference| over 2 resamples x {M * J} scores: {err:.1e}")
  print(f"1-min load average (shared machine): {load0:.1f} at start, {load1:.1f} at end")
  print(
    f"| implementation | wall s / resample | wall s for {B} | CPU s for {B} | leut speed-up (wall) "
    f"| leut speed-up (CPU) |"
  )
  print("|---|---|---|---|---|---|")
  for name, per, tot, cpu in rows:
    print(f"| {name} | {per:.4f} | {tot:.1f} | {cpu:.1f} | {tot / t_leut:.0f}x | {cpu / c_leut:.0f}x |")


if __name__ == "__main__":
  main()
