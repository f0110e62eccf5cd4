"""A roofline prediction of the full training-dynamics protocol on an H100 and a TPU v5e, from compiled cost analysis.

    python benchmarks/cost_model.py                 # seeds 5 and 32 (a few minutes of compilation on 2 cores)
    python benchmarks/cost_model.py --seeds 5

A PREDICTION, not a measurement: no accelerator was lent to this project. Each stage's unit of work (one training
step of S seeds vmapped, one 32-stimulus feature chunk at 224 px, one checkpoint's RDMs and RSA, one pair of bootstrap
resamples) is compiled here by XLA:CPU, as the accelerators' program (the batched-seed convolutions, CPU's per-seed
loop switched off) with every `lax.scan`/`fori_loop`/`lax.map` unrolled, because XLA's cost analysis counts a loop
body once, not once per trip. `compile().cost_analysis()` gives its FLOPs and bytes accessed, and the number of
kernels is counted from the optimised HLO (instructions outside fused computations). Per unit,

    t = max(FLOPs / (peak FLOP/s x compute fraction), bytes / (HBM B/s x memory fraction), kernels x launch floor)

and a stage's seconds are t times its units in the protocol: 5 conditions (untrained, backprop, feedback_alignment,
predictive_coding, stdp) x S seeds, 2,480 steps per trained rule, 8 milestones (33 checkpoints: 25 read out
feed-forward, predictive coding's 8 after its inference), 720 stimuli at 224 px, 6 ROIs x 3 subjects, 2 pair sets,
1,000 bootstrap resamples per ROI. Host work (data loading, checkpoint writes, the bootstrap's host sort) is left out.

Assumptions (`DEVICES`): every product at full float32 (leut's statistics always are; training on an accelerator
with `JAX_DEFAULT_MATMUL_PRECISION=float32`, as `leut.rsa.precision` advises): the H100's 67 TFLOP/s FP32 (not TF32)
and the v5e's bfloat16 rate / 6 (HIGHEST is six bfloat16 passes); half of that peak reached by convolutions and
matmuls of these small shapes, 70 % of HBM bandwidth; 5 µs per kernel on the H100 (launch and gap; XLA runs a
scan's body kernel by kernel) and 2 µs per op on the v5e. FLOPs and bytes are XLA:CPU's counts of the CPU-compiled
program; an accelerator fuses differently, so bytes (and kernels) are the loosest figures.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import importlib
import re
import sys
import time

import jax
import jax.numpy as jnp

CONDITIONS = ("untrained", "backprop", "feedback_alignment", "predictive_coding", "stdp")
TRAINED = CONDITIONS[1:]
EPOCHS, SUBSET, BATCH, MILESTONES = 40, 8000, 128, (0, 1, 2, 5, 10, 20, 30, 40)
STEPS = EPOCHS * (SUBSET // BATCH)  # 2,480 steps per trained rule
STIMULI, PX, EVAL_CHUNK, ROIS, SUBJECTS, PAIR_SETS, N_BOOT = 720, 224, 32, 6, 3, 2, 1000
CHECKPOINTS = {"feedforward": 1 + len(MILESTONES) * (len(TRAINED) - 1), "predictive_coding": len(MILESTONES)}


@dataclasses.dataclass(frozen=True)
class Device:
  name: str
  flops: float  # peak float32 FLOP/s (HIGHEST precision)
  bandwidth: float  # HBM bytes/s
  launch_s: float  # floor per kernel
  compute_fraction: float = 0.5
  memory_fraction: float = 0.7


DEVICES = (
  Device("H100 SXM", flops=67e12, bandwidth=3.35e12, launch_s=5e-6),
  Device("TPU v5e", flops=197e12 / 6, bandwidth=819e9, launch_s=2e-6),
)


@dataclasses.dataclass(frozen=True)
class Cost:
  flops: float
  bytes: float
  kernels: int
  loops_left: int  # while loops XLA kept (their bodies are counted once): 0 for an exact count

  def seconds(self, device: Device) -> float:
    """Roofline time of one unit: the slowest of compute, memory traffic and the kernel-launch floor."""
    return max(
      self.flops / (device.flops * device.compute_fraction),
      self.bytes / (device.bandwidth * device.memory_fraction),
      self.kernels * device.launch_s,
    )

  def __add__(self, other: Cost) -> Cost:
    return Cost(*(a + b for a, b in zip(dataclasses.astuple(self), dataclasses.astuple(other))))

  def scaled(self, k: float) -> Cost:
    return Cost(self.flops * k, self.bytes * k, round(self.kernels * k), self.loops_left)


_loops = importlib.import_module("jax._src.lax.control_flow.loops")


@contextlib.contextmanager
def unrolled_loops():
  """Trace every `lax.scan` (and so `fori_loop` with static bounds and `lax.map`) fully unrolled."""
  original = _loops.scan

  @functools.wraps(original)
  def scan(f, init, xs=None, length=None, reverse=False, unroll=1, **kw):
    del unroll
    return original(f, init, xs, length, reverse, True, **kw)

  jax.clear_caches()
  _loops.scan, jax.lax.scan = scan, scan
  try:
    yield
  finally:
    _loops.scan, jax.lax.scan = original, original
    jax.clear_caches()


_TRIVIAL = {"parameter", "constant", "get-tuple-element", "tuple", "bitcast"}


def count_kernels(hlo_text: str) -> int:
  """Instructions outside fused and applied computations (each a kernel or library call), trivial ones excluded."""
  inner = set(re.findall(r"(?:calls|to_apply|comparator)=%?([\w.\-]+)", hlo_text))
  kernels, current = 0, None
  for line in hlo_text.splitlines():
    header = re.match(r"^(?:ENTRY )?%?([\w.\-]+) \(.*\{$", line)
    if header:
      current = header.group(1)
      continue
    op = re.match(r"^\s+(?:ROOT )?%?[\w.\-]+ = \S+ ([\w\-]+)\(", line)
    if op and current not in inner and op.group(1) not in _TRIVIAL:
      kernels += 1
  return kernels


def compiled_cost(fn, *args, **kwargs) -> Cost:
  """FLOPs, bytes accessed and kernels of `fn` (jitted here unless it is already) compiled with every scan unrolled."""
  with unrolled_loops():
    jitted = fn if hasattr(fn, "lower") else jax.jit(functools.partial(fn, **kwargs))
    compiled = (jitted.lower(*args, **kwargs) if jitted is fn else jitted.lower(*args)).compile()
  analysis = compiled.cost_analysis()
  if isinstance(analysis, list):  # older jax: one dict per program
    analysis = analysis[0]
  text = compiled.as_text()
  return Cost(
    float(analysis.get("flops", 0.0)),
    float(analysis.get("bytes accessed", 0.0)),
    count_kernels(text),
    len(re.findall(r"\swhile\(", text)),
  )


@contextlib.contextmanager
def accelerator_program():
  """Compile the accelerators' program on CPU: seeds as one batched (grouped) convolution, not CPU's per-seed loop."""
  from leut.models import layers

  saved = layers.SEED_LOOP_PLATFORMS
  layers.SEED_LOOP_PLATFORMS = ()
  try:
    yield
  finally:
    layers.SEED_LOOP_PLATFORMS = saved


def stage_costs(n_seeds: int, log=print) -> list[tuple[str, Cost, float, str]]:
  """`(stage, unit cost, units in the protocol, unit)` for every stage at `n_seeds` seeds per condition."""
  from leut import evaluate, rules
  from leut.rules.base import feedforward
  from leut.train import batches, loop

  bootstrap = importlib.import_module("leut.rsa.bootstrap")
  spe = SUBSET // BATCH
  data = batches.TrainData(jnp.zeros((SUBSET, 32, 32, 3), jnp.uint8), jnp.zeros((SUBSET,), jnp.int32))
  keys = loop.seed_keys(0, n_seeds)
  stimuli = jax.ShapeDtypeStruct((EVAL_CHUNK, PX, PX, 3), jnp.float32)
  out, readouts = [], {}
  with accelerator_program():
    for name in TRAINED:
      t0 = time.perf_counter()
      rule, tx = rules.make(name, {}, steps_per_epoch=spe, epochs=EPOCHS)
      trainer = loop.make_trainer(rule, tx, data, n_subset=SUBSET, batch_size=BATCH)
      state = jax.eval_shape(trainer.init_all, keys)
      cost = compiled_cost(trainer.run_segment, state, keys, 1)
      out.append((f"train {name} ({n_seeds} seeds vmapped)", cost, STEPS, "step"))
      kind = "feedforward" if rule.represent is feedforward(trainer.network) else name
      readouts.setdefault(kind, (rule, state))
      log(f"  train {name}: {time.perf_counter() - t0:.0f} s to compile")
    for kind, (rule, state) in readouts.items():
      t0 = time.perf_counter()
      readout = jax.vmap(rule.represent, in_axes=(0, 0, 0, None))
      args = (state.params, state.model_state, state.rule_state, stimuli)
      cost = compiled_cost(readout, *args)
      what = "conv1..fc1" if kind == "feedforward" else f"{kind} after inference"
      out.append((f"features {PX} px, {what}", cost, STIMULI / EVAL_CHUNK * CHECKPOINTS[kind], f"{EVAL_CHUNK} stimuli"))
      log(f"  features {kind}: {time.perf_counter() - t0:.0f} s to compile")
    # RDMs + Spearman RSA of one checkpoint: every layer's N-seed features against 6 ROIs x 3 subjects, 2 pair sets.
    rule, state = readouts["feedforward"]
    _, feats = jax.eval_shape(
      jax.vmap(rule.represent, in_axes=(0, 0, 0, None)),
      state.params,
      state.model_state,
      state.rule_state,
      jax.ShapeDtypeStruct((STIMULI, PX, PX, 3), jnp.float32),
    )
    n_pairs = STIMULI * (STIMULI - 1) // 2
    targets = evaluate.BrainTargets(
      jax.ShapeDtypeStruct((ROIS, SUBJECTS, n_pairs), jnp.float32),
      jax.ShapeDtypeStruct((ROIS, n_pairs), jnp.float32),
      jax.ShapeDtypeStruct((n_pairs,), jnp.float32),
    )
    rsa_cost = Cost(0.0, 0.0, 0, 0)
    for layer in feats.values():
      rsa_cost = rsa_cost + compiled_cost(evaluate.score_kernel, layer, targets).scaled(PAIR_SETS)
    out.append((f"RDMs + RSA ({ROIS} ROIs x {SUBJECTS} subjects, {PAIR_SETS} pair sets)", rsa_cost, 33, "checkpoint"))

    # Bootstrap: one pair of resamples of M = 5 conditions x S seeds model RDMs vs 3 subjects, linear in M.
    def pair_cost(n_models):
      def sorted_(n):
        return bootstrap._Sorted(
          *(jax.ShapeDtypeStruct((n, n_pairs), jnp.int32) for _ in range(2)),
          *(jax.ShapeDtypeStruct((n, 1), jnp.int32) for _ in range(3)),
        )

      kernel = functools.partial(
        bootstrap._rank_scores, method="spearman", model_ties=False, subject_ties=False, batch_size=1
      )
      idx = jax.ShapeDtypeStruct((2, STIMULI), jnp.int32)
      return compiled_cost(
        kernel, sorted_(n_models), sorted_(SUBJECTS), idx, jax.ShapeDtypeStruct((n_pairs,), jnp.float32)
      )

    t0 = time.perf_counter()
    one, two = pair_cost(1), pair_cost(2)
    n_models = len(CONDITIONS) * n_seeds
    per_model = Cost(two.flops - one.flops, two.bytes - one.bytes, two.kernels - one.kernels, 0)
    cost = one + per_model.scaled(n_models - 1)
    out.append(
      (
        f"bootstrap ({n_models} model RDMs vs {SUBJECTS} subjects, {ROIS} ROIs)",
        cost,
        ROIS * (N_BOOT + 2) / 2,
        "2 resamples",
      )
    )
    log(f"  bootstrap: {time.perf_counter() - t0:.0f} s to compile")
  return out


def table(n_seeds_list, log=print) -> str:
  lines = [
    "| seeds | stage | unit | GFLOP / unit | MB / unit | kernels / unit | units | "
    + " | ".join(f"{d.name} s" for d in DEVICES)
    + " |",
    "|---|---|---|---|---|---|---|" + "---|" * len(DEVICES),
  ]
  for n_seeds in n_seeds_list:
    log(f"compiling every stage for {n_seeds} seeds")
    totals = [0.0] * len(DEVICES)
    for stage, cost, units, unit in stage_costs(n_seeds, log):
      secs = [cost.seconds(d) * units for d in DEVICES]
      totals = [a + b for a, b in zip(totals, secs)]
      exact = "" if cost.loops_left == 0 else f" ({cost.loops_left} loops counted once)"
      lines.append(
        f"| {n_seeds} | {stage}{exact} | {unit} | {cost.flops / 1e9:.2f} | {cost.bytes / 1e6:.1f} | {cost.kernels} | "
        f"{units:g} | " + " | ".join(f"{s:.1f}" for s in secs) + " |"
      )
    lines.append(
      f"| {n_seeds} | **total** | | | | | | " + " | ".join(f"**{t:.0f} s = {t / 60:.1f} min**" for t in totals) + " |"
    )
  return "\n".join(lines)


def main():
  ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument("--seeds", default="5,32", help="comma-separated seed counts per condition")
  args = ap.parse_args()
  print(
    "PREDICTION (roofline of XLA:CPU's cost analysis; no accelerator measured). Assumptions: "
    + "; ".join(
      f"{d.name}: {d.flops / 1e12:.1f} TFLOP/s float32 x {d.compute_fraction:g}, {d.bandwidth / 1e12:.2f} TB/s x "
      f"{d.memory_fraction:g}, {d.launch_s * 1e6:g} us per kernel"
      for d in DEVICES
    )
  )
  print(table([int(s) for s in args.seeds.split(",")], log=lambda m: print(m, file=sys.stderr, flush=True)))


if __name__ == "__main__":
  main()
