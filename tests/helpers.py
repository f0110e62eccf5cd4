"""Small configs and data shared by the training tests, and directories shared by the whole test session."""

import fcntl
import os
import shutil
from pathlib import Path

import jax.numpy as jnp
import numpy as np

from leut.defaults import protocol_config
from leut.train import batches

# For end-to-end runs whose point is the plumbing (an architecture, a model kind, a data source, a launcher): the
# statistics beyond rsa.csv (bootstrap, partial RSA, cross-validated best layer, cross-run pairs) have their own
# tests on the shared tiny workdirs, and the figures' PDF copies `tests/report/test_report_outputs.py`'s, so these
# runs skip them.
PLUMBING_RUN = [
  "--config.eval.n_boot=0",
  "--config.eval.best_layer_splits=0",
  "--config.eval.partial_controls=()",
  "--config.eval.pairs=all",
  "--config.report.figure_formats=png",
]


def tiny_config(**overrides):
  c = protocol_config()
  c.rules = ["backprop"]
  c.seeds = 3
  c.epochs = 3
  c.milestones = [0, 1, 3]
  c.batch_size = 16
  c.model.widths = (4, 8, 8)
  c.model.fc_dim = 16
  c.data.train_subset = 32
  for k, v in overrides.items():
    node = c
    *parents, leaf = k.split(".")
    for p in parents:
      node = node[p]
    node[leaf] = v
  return c


def random_train_data(n=96, seed=0):
  rng = np.random.default_rng(seed)
  return batches.TrainData(
    jnp.asarray(rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)),
    jnp.asarray(rng.integers(0, 10, n).astype(np.int32)),
  )


def shared_dir(tmp_path_factory, name: str, make) -> Path:
  """`name` under the session's temporary root, made once by `make(path)` for the whole session, across pytest-xdist
  workers too (they share the parent of their per-worker roots; a file lock lets one worker make it while the others
  wait). `make` must leave a marker file `.done` only when the directory is complete."""
  root = tmp_path_factory.getbasetemp()
  if os.environ.get("PYTEST_XDIST_WORKER"):
    root = root.parent
  path = root / name
  with open(root / f".{name}.lock", "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    if not (path / ".done").exists():
      shutil.rmtree(path, ignore_errors=True)
      path.mkdir(parents=True)
      make(path)
      (path / ".done").touch()
  return path
