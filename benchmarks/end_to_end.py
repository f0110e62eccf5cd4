"""Wall time per stage of the full training-dynamics protocol, on synthetic data of the real sizes.

    python benchmarks/end_to_end.py --scale 1                 # the whole protocol, measured (hours on a CPU)
    python benchmarks/end_to_end.py --scale 0.01              # a reduced run on this CPU (a few minutes), extrapolated

Protocol: 5 conditions (untrained, backprop, feedback_alignment, predictive_coding, stdp) × N seeds (`--seeds`, 5)
× 40 epochs × 8,000 images (62 steps of 128 per epoch), checkpoints at 8 milestones (epochs 0 1 2 5 10 20 30 40;
untrained only at 0: 33 checkpoints), features of 720 stimuli at 224 px for conv1..fc1, RDMs and Spearman RSA
against 6 ROIs × 3 subjects (all pairs and cross-run pairs), and a 1,000-resample paired stimulus bootstrap per ROI.

With `--scale s < 1` each stage runs a fraction `s` of its work (at least one unit: one training step, one
checkpoint, one 32-image feature chunk, 10 bootstrap resamples) with the real array sizes, and its time is scaled up
linearly to the full protocol; those rows are marked "extrapolated". Compilation is timed separately (it does not
scale with the work). All seeds of a condition run in one vmapped program, as in `leut run`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import leut.rsa as rsa
from leut import rules
from leut.checkpoint import MilestoneCheckpoints
from leut.evaluate import brain_targets, extract, score_kernel
from leut.rules.base import feedforward
from leut.train import batches, loop, sharding

CONDITIONS = ("untrained", "backprop", "feedback_alignment", "predictive_coding", "stdp")
EPOCHS, SUBSET, BATCH, MILESTONES = 40, 8000, 128, (0, 1, 2, 5, 10, 20, 30, 40)
STIMULI, PX, ROIS, SUBJECTS, N_BOOT, EVAL_CHUNK = 720, 224, 6, 3, 1000, 32


def _log(msg):
  print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _time(fn):
  t0 = time.perf_counter()
  out = fn()
  jax.block_until_ready(out)
  return out, time.perf_counter() - t0


def main():
  ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument("--scale", type=float, default=0.01, help="fraction of each stage's work actually run")
  ap.add_argument("--seeds", type=int, default=5)
  ap.add_argument("--conditions", default=",".join(CONDITIONS))
  args = ap.parse_args()
  s, n_seeds = args.scale, args.seeds
  conditions = args.conditions.split(",")
  spe = SUBSET // BATCH
  total_steps = EPOCHS * spe
  n_ckpt_per = {c: (len(MILESTONES) if rules.is_trained(c) else 1) for c in conditions}
  n_ckpts = sum(n_ckpt_per.values())

  rng = np.random.default_rng(0)
  data = batches.TrainData(
    jnp.asarray(rng.integers(0, 256, (50000, 32, 32, 3), dtype=np.uint8)),
    jnp.asarray(rng.integers(0, 10, 50000).astype(np.int32)),
  )
  keys = sharding.seed_keys(0, n_seeds)
  rows = []  # stage, measured work, measured s, full work, full s (extrapolated), compile s
  states = {}
  tmp = Path(tempfile.mkdtemp(prefix="leut_e2e_"))
  load0 = os.getloadavg()[0]
  try:
    # 1. training: every trained condition, all seeds vmapped
    steps = max(1, round(s * total_steps))
    for c in conditions:
      _log(f"train {c}: {steps} steps x 2 (compile + timed)")
      rule, tx = rules.make(c, {}, steps_per_epoch=spe, epochs=EPOCHS)
      trainer = loop.make_trainer(rule, tx, data, n_subset=SUBSET, batch_size=BATCH)
      state = sharding.reshard(trainer.init_all(keys), n_seeds)
      if rules.is_trained(c):
        (state, _), t_first = _time(lambda: trainer.run_segment(state, keys, steps))
        (state, _), t = _time(lambda: trainer.run_segment(state, keys, steps))
        rows.append(
          (
            f"train {c} ({n_seeds} seeds vmapped)",
            f"{steps} steps",
            t,
            f"{total_steps} steps",
            t * total_steps / steps,
            max(t_first - t, 0.0),
          )
        )
      states[c] = (rule, state)
    _log("checkpoints")
    # 2. checkpoints: Orbax save + digest of one N-seed state, per checkpoint
    _, state = states[conditions[-1]]
    n_saves = max(1, round(s * n_ckpts))
    ck = MilestoneCheckpoints(tmp / "ckpt")
    _, t = _time(lambda: [ck.save(i, state) for i in range(n_saves)])
    ck.close()
    rows.append(
      ("checkpoint save (Orbax + SHA-256)", f"{n_saves} ckpts", t, f"{n_ckpts} ckpts", t * n_ckpts / n_saves, 0.0)
    )
    _log("features")
    # 3. features at 224 px, all seeds of a checkpoint at once, in chunks of 32 stimuli. Rules with an evaluation of
    #    their own (predictive coding reads out after its inference) are timed on their own checkpoints.
    n_img = max(EVAL_CHUNK, round(s * STIMULI) // EVAL_CHUNK * EVAL_CHUNK)
    images = rng.normal(size=(n_img, PX, PX, 3)).astype(np.float32)
    by_readout: dict[str, list[str]] = {}
    for c in conditions:
      by_readout.setdefault("feedforward" if states[c][0].represent is feedforward(trainer.network) else c, []).append(
        c
      )
    feats = None
    for readout, members in by_readout.items():
      evaluate, state_k = states[members[0]][0].represent, states[members[0]][1]
      n_k = sum(n_ckpt_per[c] for c in members)
      _, t_first = _time(lambda: extract(evaluate, state_k, images[:EVAL_CHUNK], EVAL_CHUNK)[1])  # noqa: B023
      out, t = _time(lambda: extract(evaluate, state_k, images, EVAL_CHUNK)[1])  # noqa: B023
      feats = out if feats is None or readout == "feedforward" else feats
      what = "conv1..fc1" if readout == "feedforward" else f"{readout} after inference"
      rows.append(
        (
          f"features {PX} px, {what} ({n_seeds} seeds)",
          f"{n_img} stimuli x 1 ckpt",
          t,
          f"{STIMULI} stimuli x {n_k} ckpts",
          t * STIMULI / n_img * n_k,
          max(t_first - t * EVAL_CHUNK / n_img, 0.0),
        )
      )
    _log("RSA")
    # 4. RDMs + RSA for one checkpoint at the real size (720 stimuli), then × checkpoints
    feats_720 = {k: np.resize(v, (v.shape[0], STIMULI, v.shape[-1])) for k, v in feats.items()}
    brain_rdms = rsa.rdm(jnp.asarray(rng.normal(size=(ROIS * SUBJECTS, STIMULI, 64)).astype(np.float32)))
    brain = brain_rdms.reshape(ROIS, SUBJECTS, STIMULI, STIMULI)
    masks = [
      jnp.ones((STIMULI, STIMULI), bool),
      jnp.asarray(np.add.outer(np.arange(STIMULI) % 12, np.arange(STIMULI) % 12) % 2 == 1),
    ]
    targets = [brain_targets(brain, m) for m in masks]  # once per evaluation (ranked brain RDMs)

    def score_all():
      return [score_kernel(jnp.asarray(f), t) for f in feats_720.values() for t in targets]

    _, t_first = _time(score_all)
    n_rsa = max(1, round(s * n_ckpts))
    _, t = _time(lambda: [score_all() for _ in range(n_rsa)])
    rows.append(
      (
        f"RDMs + RSA ({ROIS} ROIs x {SUBJECTS} subjects, 2 pair sets)",
        f"{n_rsa} ckpts",
        t,
        f"{n_ckpts} ckpts",
        t * n_ckpts / n_rsa,
        max(t_first - t / n_rsa, 0.0),
      )
    )
    _log("bootstrap")
    # 5. bootstrap: per ROI, conditions x seeds model RDMs (final milestone, one layer) vs 3 subjects
    model = rsa.rdm(jnp.asarray(np.resize(feats_720["conv3"], (len(conditions) * n_seeds, STIMULI, 128))))
    model = model.reshape(len(conditions), n_seeds, STIMULI, STIMULI)
    n_boot = max(10, round(s * N_BOOT))
    _, t_first = _time(lambda: rsa.bootstrap(model, brain[0], key=jax.random.key(0), n_boot=n_boot).scores)
    _, t = _time(
      lambda: [rsa.bootstrap(model, brain[r], key=jax.random.key(r), n_boot=n_boot).scores for r in range(ROIS)]
    )
    rows.append(
      (
        f"bootstrap ({len(conditions)} conditions x {n_seeds} seeds vs {SUBJECTS} subjects, {ROIS} ROIs)",
        f"{n_boot} resamples",
        t,
        f"{N_BOOT} resamples",
        t * N_BOOT / n_boot,
        max(t_first - t / ROIS, 0.0),
      )
    )
  finally:
    shutil.rmtree(tmp, ignore_errors=True)
  load1 = os.getloadavg()[0]

  extrapolated = s < 1
  print(
    f"{os.cpu_count()} CPU cores, jax {jax.__version__} ({jax.devices()[0].platform}, {jax.device_count()} "
    f"device(s)); --scale {s} --seeds {n_seeds}; 1-min load {load0:.1f} at start, {load1:.1f} at end"
  )
  if extrapolated:
    print(f"EXTRAPOLATED: each stage ran {s:g} of its work and its time was scaled up linearly to the full protocol")
  print(
    "| stage | measured work | measured s | full protocol work | full protocol s"
    + (" (extrapolated)" if extrapolated else "")
    + " | compile s |"
  )
  print("|---|---|---|---|---|---|")
  total = 0.0
  for stage, work, t, full_work, full_t, comp in rows:
    total += full_t + comp
    print(f"| {stage} | {work} | {t:.1f} | {full_work} | {full_t:.0f} | {comp:.1f} |")
  print(f"| **total** | | | | **{total:.0f} s = {total / 3600:.2f} h** | |")


if __name__ == "__main__":
  main()
