"""Times loading the brain data of an evaluation that scores rsa, cka and encoding on THINGS-fMRI, reading each
subject's betas twice (the RDMs, then the responses: the path before issue 18's last point) or once.

  python benchmarks/brain_responses_read.py [--synthetic-dir DIR] [--rounds 5] [overrides ...]

The config is experiments/quickstart.py with eval.metrics=rsa,cka,encoding (and the overrides). Rounds alternate
between the two paths; prints the seconds of each round, the medians, the betas reads per load and the seconds of
the whole `experiment.load_eval_inputs` (CIFAR test set and stimulus images included).
"""

from __future__ import annotations

import argparse
import statistics
import time

from leut import config as config_lib
from leut import experiment
from leut.data import response_h5


def main() -> None:
  parser = argparse.ArgumentParser()
  parser.add_argument("--synthetic-dir", default="data_cache/synthetic")
  parser.add_argument("--rounds", type=int, default=5)
  args, overrides = parser.parse_known_args()
  config = config_lib.load(
    "experiments/quickstart.py",
    [f"--config.data.synthetic_dir={args.synthetic_dir}", "--config.eval.metrics=rsa,cka,encoding", *overrides],
  )
  paths = experiment.resolve_data(config)
  reads, read_rows = [], response_h5._read_rows

  def counted(path, *rest):
    reads.append(path)
    return read_rows(path, *rest)

  response_h5._read_rows = counted

  def twice():
    brain = experiment.load_brain(config, paths, progress=False)
    return brain, experiment.eval_responses(config, paths, brain, None)

  def once():
    return experiment.load_brain_and_responses(config, paths, progress=False)

  seconds, n_reads = {"two reads": [], "one read": []}, {}
  for _ in range(args.rounds):
    for name, load in (("two reads", twice), ("one read", once)):
      reads.clear()
      t = time.perf_counter()
      load()
      seconds[name].append(time.perf_counter() - t)
      n_reads[name] = len(reads)
  for name, s in seconds.items():
    rounds = " ".join(f"{x:.3f}" for x in s)
    print(f"{name:<10s} median {statistics.median(s):.3f} s ({rounds}); {n_reads[name]} betas reads per load")
  t = time.perf_counter()
  experiment.load_eval_inputs(config, paths, progress=False)
  print(f"load_eval_inputs (one read) {time.perf_counter() - t:.3f} s")


if __name__ == "__main__":
  main()
