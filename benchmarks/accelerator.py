"""Everything the first GPU (or TPU) should measure, in one command and one printed table.

    python benchmarks/accelerator.py            # on the accelerator: protocol sizes, within 8 minutes
    python benchmarks/accelerator.py --small    # any CPU, a few seconds: tiny network and sizes (CI runs this)

Rows (protocol sizes: the 32/64/128 CNN with fc 512, batch 128 at 32 px, 8,000-image subset):
- seed-steps/s of backprop and predictive coding with 1, 5, 32 and 128 seeds vmapped in one program;
- one epoch (62 steps) of every trained rule with 5 seeds vmapped;
- features of 720 stimuli at 224 px for 5 seeds, the feed-forward readout and predictive coding's (after inference);
- 1,000 paired stimulus-bootstrap resamples at 720 stimuli (5 conditions x 5 seeds vs 3 subjects);
- the full training-dynamics protocol at 5 seeds extrapolated from those rows (`cost_model.py`'s counts: 2,480 steps
  per trained rule, 25 feed-forward and 8 predictive-coding checkpoints, 6 ROIs of bootstrap; RDMs + RSA, a small
  share of the protocol in `benchmarks/README.md`, and host work are not included).

Each program is compiled ahead of time (`lower(...).compile()`, reported as compile s) and then run once; a row that
fails (out of memory, say) prints its error and the rest go on. Rows are skipped, not started, once `--budget`
seconds have passed, so the command ends in time on any machine. `--small` is the same code at toy sizes.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
import traceback
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cost_model  # noqa: E402


@dataclasses.dataclass(frozen=True)
class Sizes:
  widths: tuple[int, ...]
  fc_dim: int
  batch: int
  subset: int
  seed_counts: tuple[int, ...]
  steps: int  # steps per seed-steps/s measurement
  seeds: int  # seeds of the epoch, feature and bootstrap rows (the protocol's 5)
  stimuli: int
  px: int
  eval_chunk: int
  n_boot: int
  seed_step_rules: tuple[str, ...] = ("backprop", "predictive_coding")
  epoch_rules: tuple[str, ...] | None = None  # rules timed for one epoch (None: every trained rule)
  readouts: tuple[str, ...] = ("backprop", "predictive_coding")  # feed-forward, and after PC's inference


PROTOCOL = Sizes((32, 64, 128), 512, 128, 8000, (1, 5, 32, 128), 4, 5, 720, 224, 32, 1000)
# Toy sizes and only backprop's programs (each XLA:CPU compile of a training segment takes seconds, even for a toy
# network); an epoch is `steps` steps, so one 1-seed program serves the seed-steps and the epoch row.
SMALL = Sizes(
  widths=(4, 8, 8),
  fc_dim=16,
  batch=8,
  subset=16,
  seed_counts=(1,),
  steps=2,
  seeds=1,
  stimuli=16,
  px=32,
  eval_chunk=8,
  n_boot=20,
  seed_step_rules=("backprop",),
  epoch_rules=("backprop",),
  readouts=("backprop",),
)


def _block(x):
  jax.block_until_ready(x)
  return x


class Bench:
  def __init__(self, sizes: Sizes, budget_s: float):
    from leut import rules
    from leut.models import cnn
    from leut.train import batches

    self.sizes, self.deadline, self.t_start = sizes, time.perf_counter() + budget_s, time.perf_counter()
    self.network = cnn.network(sizes.widths, sizes.fc_dim)
    rng = np.random.default_rng(0)
    self.data = batches.TrainData(
      jnp.asarray(rng.integers(0, 256, (sizes.subset, 32, 32, 3), dtype=np.uint8)),
      jnp.asarray(rng.integers(0, 10, sizes.subset).astype(np.int32)),
    )
    self.spe = sizes.subset // sizes.batch
    self.trained = sizes.epoch_rules or [name for name in rules.available() if rules.is_trained(name)]
    self.rows: list[tuple] = []  # item, seeds, work, seconds, rate, compile s
    self.measured: dict[str, float] = {}
    self._trainers, self._compiled = {}, {}

  def trainer(self, name):
    from leut import rules
    from leut.train import loop

    if name not in self._trainers:
      rule, tx = rules.make(name, {}, steps_per_epoch=self.spe, epochs=cost_model.EPOCHS, network=self.network)
      self._trainers[name] = (
        rule,
        loop.make_trainer(
          rule, tx, self.data, n_subset=self.sizes.subset, batch_size=self.sizes.batch, network=self.network
        ),
      )
    return self._trainers[name]

  def row(self, item, seeds, work, fn):
    """Run `fn() -> (seconds, rate text, compile s)` unless the budget is spent; record its row either way."""
    if time.perf_counter() > self.deadline:
      self.rows.append((item, seeds, work, "skipped (time budget)", "", ""))
      return None
    try:
      seconds, rate, compile_s = fn()
    except Exception as err:  # noqa: BLE001 - one failing row (memory, say) must not lose the others
      traceback.print_exc(file=sys.stderr)
      self.rows.append((item, seeds, work, f"failed: {type(err).__name__}", "", ""))
      return None
    self.rows.append((item, seeds, work, f"{seconds:.3f}", rate, f"{compile_s:.1f}"))
    return seconds

  def segment(self, name, n_seeds, n_steps):
    """Seconds of one compiled `run_segment` of `n_steps` steps for `n_seeds` seeds, and its compile seconds."""
    from leut.train import loop

    _, trainer = self.trainer(name)
    keys = loop.seed_keys(0, n_seeds)
    state = _block(trainer.init_all(keys))
    compile_s = 0.0  # a program already compiled for another row
    if (name, n_seeds, n_steps) not in self._compiled:
      t0 = time.perf_counter()
      self._compiled[(name, n_seeds, n_steps)] = trainer.run_segment.lower(state, keys, n_steps).compile()
      compile_s = time.perf_counter() - t0
    compiled = self._compiled[(name, n_seeds, n_steps)]
    t0 = time.perf_counter()
    _block(compiled(state, keys))
    return time.perf_counter() - t0, compile_s

  def seed_steps(self, name, n_seeds):
    seconds, compile_s = self.segment(name, n_seeds, self.sizes.steps)
    return seconds, f"{n_seeds * self.sizes.steps / seconds:.2f} seed-steps/s", compile_s

  def epoch(self, name):
    seconds, compile_s = self.segment(name, self.sizes.seeds, self.spe)
    self.measured[f"epoch {name}"] = seconds
    return seconds, f"{self.sizes.seeds * self.spe / seconds:.2f} seed-steps/s", compile_s

  def features(self, name):
    from leut import evaluate
    from leut.train import loop

    rule, trainer = self.trainer(name)
    state = _block(trainer.init_all(loop.seed_keys(0, self.sizes.seeds)))
    s = self.sizes
    images = np.random.default_rng(1).normal(size=(s.stimuli, s.px, s.px, 3)).astype(np.float32)
    t0 = time.perf_counter()
    _block(evaluate.extract(rule.represent, state, images[: s.eval_chunk], s.eval_chunk)[1])  # compile + 1 chunk
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    _block(evaluate.extract(rule.represent, state, images, s.eval_chunk)[1])
    seconds = time.perf_counter() - t0
    self.measured[f"features {name}"] = seconds
    return (
      seconds,
      f"{s.stimuli * s.seeds / seconds:.1f} stimulus-seeds/s",
      max(first - seconds * s.eval_chunk / s.stimuli, 0.0),
    )

  def bootstrap(self):
    import leut.rsa as rsa

    s = self.sizes
    rng = np.random.default_rng(2)
    n_models = len(cost_model.CONDITIONS) * s.seeds
    model = rsa.rdm(jnp.asarray(rng.normal(size=(n_models, s.stimuli, 16)).astype(np.float32)))
    brain = rsa.rdm(jnp.asarray(rng.normal(size=(cost_model.SUBJECTS, s.stimuli, 16)).astype(np.float32)))
    t0 = time.perf_counter()
    _block(rsa.bootstrap(model, brain, key=jax.random.key(0), n_boot=s.n_boot).scores)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    _block(rsa.bootstrap(model, brain, key=jax.random.key(1), n_boot=s.n_boot).scores)
    seconds = time.perf_counter() - t0
    self.measured["bootstrap"] = seconds
    return seconds, f"{s.n_boot / seconds:.1f} resamples/s", max(first - seconds, 0.0)

  def run(self):
    """The rows the extrapolation needs first (the protocol's rules' epochs, features, bootstrap), then the seed
    scaling and the control rules' epochs, so that a budget that runs out still leaves the full-protocol estimate."""
    s = self.sizes
    protocol_rules = [name for name in self.trained if name in cost_model.TRAINED]
    for name in protocol_rules:
      self.row(f"one epoch {name}", s.seeds, f"{self.spe} steps", lambda: self.epoch(name))  # noqa: B023
    for name in s.readouts:
      what = "feed-forward" if name == "backprop" else f"{name} after inference"
      work = f"{s.stimuli} stimuli at {s.px} px"
      self.row(f"features, {what}", s.seeds, work, lambda: self.features(name))  # noqa: B023
    self.row("bootstrap", s.seeds, f"{s.n_boot} resamples, {s.stimuli} stimuli", self.bootstrap)
    for name in s.seed_step_rules:
      for n in s.seed_counts:
        self.row(f"train {name}", n, f"{s.steps} steps", lambda: self.seed_steps(name, n))  # noqa: B023
    for name in self.trained:
      if name not in protocol_rules:
        self.row(f"one epoch {name}", s.seeds, f"{self.spe} steps", lambda: self.epoch(name))  # noqa: B023
    self.rows.append(("full protocol (extrapolated)", s.seeds, "", *self.extrapolate(), "", ""))

  def extrapolate(self) -> tuple[str]:
    """The protocol at `seeds` seeds from the measured rows: 40 epochs per trained rule, 720 stimuli per checkpoint,
    1,000 resamples per ROI (with `--small` the same counts over toy epochs, so only the arithmetic is exercised).
    Stages without a measured row are named, not guessed."""
    m, s = self.measured, self.sizes
    stimuli = PROTOCOL.stimuli / s.stimuli
    parts = {f"epoch {c}": cost_model.EPOCHS for c in cost_model.TRAINED}
    parts["features backprop"] = stimuli * cost_model.CHECKPOINTS["feedforward"]
    parts["features predictive_coding"] = stimuli * cost_model.CHECKPOINTS["predictive_coding"]
    parts["bootstrap"] = PROTOCOL.n_boot / s.n_boot * cost_model.ROIS
    total = sum(m[k] * times for k, times in parts.items() if k in m)
    missing = [k for k in parts if k not in m]
    return (f"{total:.0f} s = {total / 3600:.2f} h" + (f" without {', '.join(missing)}" if missing else ""),)

  def table(self) -> str:
    lines = ["| item | seeds | work | seconds | rate | compile s |", "|---|---|---|---|---|---|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in self.rows]
    return "\n".join(lines)


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument("--small", action="store_true", help="toy sizes, for a CPU (CI)")
  ap.add_argument("--budget", type=float, default=420.0, help="start no new row after this many seconds")
  args = ap.parse_args(argv)
  sizes = SMALL if args.small else PROTOCOL
  dev = jax.devices()[0]
  bench = Bench(sizes, args.budget)
  bench.run()
  print(
    f"{dev.platform} ({dev.device_kind}), {jax.device_count()} device(s), jax {jax.__version__}, "
    f"{os.cpu_count()} CPU cores; {'--small (toy sizes)' if args.small else 'protocol sizes'}; "
    f"{time.perf_counter() - bench.t_start:.0f} s in all"
  )
  print(bench.table())


if __name__ == "__main__":
  main()
