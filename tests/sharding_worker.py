"""Subprocess body of the multi-device tests (XLA_FLAGS / jax.distributed must be set before JAX starts).

python tests/sharding_worker.py WORKDIR:SEEDS:CHUNK [...]   # train_rule into each WORKDIR, dump params+features
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from leut import distributed  # noqa: E402

distributed.maybe_initialize()

import jax  # noqa: E402
import numpy as np  # noqa: E402

from leut.evaluate import extract  # noqa: E402
from leut.train import milestones, sharding  # noqa: E402
from tests.helpers import random_train_data, tiny_config  # noqa: E402


def stimuli():
  return np.random.default_rng(5).normal(size=(6, 32, 32, 3)).astype(np.float32)


def train_and_dump(workdir: Path, seeds: int, chunk: int) -> None:
  config = tiny_config(seeds=seeds, seed_chunk=chunk)
  data = random_train_data()
  milestones.train_rule(config, workdir, "backprop", data, progress=False)
  rule, trainer = milestones.build(config, "backprop", data)
  ckpts = milestones.checkpoints_for(workdir, "backprop")
  step, state = ckpts.restore_latest(trainer.abstract_state(seeds))
  ckpts.close()
  kernel = state.params["conv1"]["kernel"]
  out = {
    "step": np.int64(step),
    "n_shards": np.int64(len(kernel.sharding.device_set)),
    "spec": np.array(str(getattr(kernel.sharding, "spec", ""))),
  }
  for path, leaf in jax.tree_util.tree_leaves_with_path(sharding.to_host(state.params)):
    out["param" + jax.tree_util.keystr(path)] = leaf
  if jax.process_count() == 1:  # evaluation as evaluate.py runs it (single-controller: device_get of the results)
    _, feats = extract(rule.represent, state, stimuli(), 4)
    out.update({"feat_" + k: v for k, v in feats.items()})
  if distributed.is_primary():
    np.savez(workdir / "dump.npz", **out)
  distributed.barrier("dump")


if __name__ == "__main__":
  for spec in sys.argv[1:]:
    workdir, seeds, chunk = spec.rsplit(":", 2)
    train_and_dump(Path(workdir), int(seeds), int(chunk))
