"""Train every configured rule for all seeds at once, writing a checkpoint at each milestone epoch.

Resumption: every milestone checkpoint of a rule is verified before training (damaged ones are set aside); the rule
restarts from the newest good checkpoint below the first milestone that is missing or damaged. Since batches,
augmentation and dropout are pure functions of (seed key, step), the resumed run computes exactly what the
uninterrupted run would have; a later milestone that is already there and verified is kept when the retrained state
equals it (`MilestoneCheckpoints.save`). Metrics rows of the epochs trained again replace the old ones.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from leut import config as config_lib
from leut import models, rules
from leut import workdir as workdir_lib
from leut.checkpoint import MilestoneCheckpoints
from leut.train import batches, loop, sharding


def steps_per_epoch(config) -> int:
  return config.data.train_subset // config.batch_size


def shapes_only(config) -> batches.TrainData:
  """A training set of `config.data.train_subset` images that holds only shapes and dtypes: enough to build a trainer
  for its restore target (`Trainer.abstract_state`) and its evaluation, without reading a training image."""
  n = int(config.data.train_subset)
  return batches.TrainData(jax.ShapeDtypeStruct((n, 32, 32, 3), jnp.uint8), jax.ShapeDtypeStruct((n,), jnp.int32))


def build(
  config, rule_name: str, train_data: batches.TrainData | None = None
) -> tuple[rules.LearningRule, loop.Trainer]:
  """The rule named `rule_name` with its configured hyperparameters, and its seed-vmapped trainer.

  Without `train_data` (evaluation, restoring checkpoints) the trainer is built on `shapes_only(config)`: its
  restore targets and evaluation work, its training segments cannot run.
  """
  train_data = shapes_only(config) if train_data is None else train_data
  hparams = dict(config.rule_hparams.get(rule_name, {}))
  network = models.build(config.model)
  rule, tx = rules.make(
    rule_name, hparams, steps_per_epoch=steps_per_epoch(config), epochs=config.epochs, network=network
  )
  trainer = loop.make_trainer(
    rule,
    tx,
    train_data,
    n_subset=config.data.train_subset,
    batch_size=config.batch_size,
    network=network,
    init_options=models.init_options(config.model, rule_name),
  )
  return rule, trainer


def checkpoints_for(workdir: Path, rule_name: str) -> MilestoneCheckpoints:
  return MilestoneCheckpoints(workdir_lib.Workdir(workdir).checkpoints(rule_name))


class DivergedSeedWarning(UserWarning):
  pass


def train_rule(config, workdir: Path, rule_name: str, train_data: batches.TrainData, *, progress: bool = True) -> None:
  """Train `rule_name` for `config.seeds` seeds (vmapped), saving every milestone; resumes if checkpoints exist.

  Seeds are sharded over every device of every process (`leut.train.sharding`) and trained `config.seed_chunk`
  at a time (0 or absent: the largest chunk that fits, `sharding.auto_seed_chunk`); results do not depend on either.
  A seed whose loss or state turns NaN/inf (`loop.diverged`) is recorded as `"diverged": true` in `metrics.jsonl`
  from that epoch on, counted on the progress bar (`diverged=1/5`) and warned about once; the other seeds train on,
  and evaluation reports the diverged seed's scores as NaN (`leut.evaluate`).
  """
  spe = steps_per_epoch(config)
  _, trainer = build(config, rule_name, train_data)
  ckpts = checkpoints_for(workdir, rule_name)
  keys = sharding.seed_keys(config.seed, config.seeds)
  abstract = trainer.abstract_state(config.seeds)
  milestone_list = config_lib.milestone_epochs(config, rule_name)
  good = ckpts.verify(abstract)
  missing = [e for e in milestone_list if e * spe not in good]
  if not missing:
    ckpts.close()
    return
  below = [s for s in good if s < missing[0] * spe]
  if below:
    state, done_epoch = ckpts.restore(max(below), abstract), max(below) // spe
  else:
    state, done_epoch = sharding.reshard(trainer.init_all(keys), config.seeds), 0
    ckpts.save(0, state)
  wd = workdir_lib.Workdir(workdir)
  workdir_lib.drop_metrics_after(wd, rule_name, done_epoch)
  last = max(milestone_list)
  bar = tqdm(
    total=last,
    initial=done_epoch,
    desc=f"train {rule_name} ({config.seeds} seeds)",
    unit="epoch",
    disable=not progress or last == 0,
    leave=False,
  )
  milestones = set(milestone_list)
  chunk = config.seeds
  if done_epoch < last:
    chunk = sharding.plan_seed_chunk(
      int(config.get("seed_chunk", 0) or 0), trainer.run_segment, trainer.abstract_state, config.seeds, spe
    )
  warned = set()
  for epoch in range(done_epoch + 1, last + 1):
    t0 = time.time()
    state, metrics = sharding.run_chunked(trainer.run_segment, state, keys, spe, chunk)
    metrics = sharding.to_host(metrics)
    diverged_N = np.asarray(metrics.pop("diverged"), bool).reshape(-1)
    rows = []
    for s in range(config.seeds):
      row = {"rule": rule_name, "seed": s, "epoch": epoch, "seconds": round(time.time() - t0, 3)}
      row.update({f"train_{k}": float(np.asarray(v)[s]) for k, v in metrics.items()})
      row["diverged"] = bool(diverged_N[s])
      rows.append(row)
    workdir_lib.append_metrics(wd, rows)
    new = sorted(set(np.flatnonzero(diverged_N).tolist()) - warned)
    if new:
      warned |= set(new)
      warnings.warn(
        f"{rule_name}: seed(s) {new} diverged (NaN/inf loss or weights) by epoch {epoch}; the other seeds train on, "
        "and the evaluation reports their scores as NaN",
        DivergedSeedWarning,
        stacklevel=2,
      )
    ok = ~diverged_N
    acc = float(np.mean(np.asarray(metrics["accuracy"])[ok])) if ok.any() else float("nan")
    postfix = {"acc": f"{acc:.3f}"}
    if diverged_N.any():
      postfix["diverged"] = f"{int(diverged_N.sum())}/{config.seeds}"
    bar.set_postfix(postfix)
    bar.update(1)
    if epoch in milestones:
      ckpts.save(epoch * spe, state)
  bar.close()
  ckpts.close()
