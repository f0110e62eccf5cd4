"""Wall time of the evaluation stage (`leut.evaluate.evaluate_all`) on a quickstart-shaped workdir.

    python benchmarks/evaluate_stage.py --workdir /tmp/eval_bench --repeats 2

The workdir is made once (`leut run experiments/quickstart.py` with two rules, one trained epoch on 64 images, so
training takes seconds); the evaluation then scores the quickstart's evaluation load: 3 seeds, conv1..fc1 of the
protocol CNN, 120 stimuli at 64 px, 1,000 test images, both pair sets, partial RSA (pixel, luminance), a 1,000-draw
stimulus bootstrap and the 10-split cross-validated best layer, at milestones 0 and 1 (3 checkpoints). The inputs
are loaded before timing; the first evaluation (compilation) is timed separately from the repeats.
"""

from __future__ import annotations

import argparse
import inspect
import statistics
import time
from pathlib import Path

from leut import cli, experiment
from leut import evaluate as evaluate_lib

RUN = [
  "--config.rules=untrained,backprop",
  "--config.epochs=1",
  "--config.milestones=0,1",
  "--config.data.train_subset=64",
  "--no-progress",
]


def main():
  ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument("--workdir", type=Path, default=Path("/tmp/leut_eval_bench"))
  ap.add_argument("--repeats", type=int, default=2)
  args = ap.parse_args()
  if not (args.workdir / "summary.md").exists():
    assert cli.main(["run", "experiments/quickstart.py", "--workdir", str(args.workdir), *RUN]) == 0
  config = cli._workdir_config(args.workdir, [])
  paths = experiment.resolve_data(config)
  inputs = experiment.load_eval_inputs(config, paths, progress=False)
  extra = {}
  if "train_data" in inspect.signature(evaluate_lib.evaluate_all).parameters:  # before issue 16: the trainer was
    extra["train_data"] = experiment.load_train_data(paths)[0]  # rebuilt from the training set

  def once():
    t0 = time.perf_counter()
    evaluate_lib.evaluate_all(config, args.workdir, inputs, progress=False, **extra)
    return time.perf_counter() - t0

  first = once()
  times = [once() for _ in range(args.repeats)]
  print(
    f"first (with compilation): {first:.1f} s; repeats: {', '.join(f'{t:.1f}' for t in times)} s; "
    f"median {statistics.median(times):.1f} s"
  )


if __name__ == "__main__":
  main()
