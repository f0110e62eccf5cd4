"""Train every configured rule for all seeds at once, writing a checkpoint at each milestone epoch.

Resumption: every milestone checkpoint of a rule is verified before training (damaged ones are set aside); the rule
restarts from the newest good checkpoint below the first milestone that is missing or damaged. Since batches,
augmentation and dropout are pure functions of (seed key, step), the resumed run computes exactly what the
uninterrupted run would have; a later milestone that is already there and verified is kept when the retrained state
equals it (`MilestoneCheckpoints.save`). Metrics rows of the epochs trained again replace the old ones.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from leut import rules
from leut import workdir as workdir_lib
from leut.checkpoint import MilestoneCheckpoints
from leut.train import batches, loop, sharding


def steps_per_epoch(config) -> int:
  return config.data.train_subset // config.batch_size


def milestone_epochs(config, rule_name: str) -> list[int]:
  """Milestones this rule is checkpointed at: the configured ones up to `epochs`; only 0 for untrained rules."""
  epochs = sorted({int(e) for e in config.milestones if 0 <= int(e) <= config.epochs} | {0})
  return [0] if not rules.is_trained(rule_name) else epochs


def build(config, rule_name: str, train_data: batches.TrainData) -> tuple[rules.LearningRule, loop.Trainer]:
  """The rule named `rule_name` with its configured hyperparameters, and its seed-vmapped trainer."""
  hparams = dict(config.rule_hparams.get(rule_name, {}))
  rule, tx = rules.make(rule_name, hparams, steps_per_epoch=steps_per_epoch(config), epochs=config.epochs)
  trainer = loop.make_trainer(
    rule,
    tx,
    train_data,
    n_subset=config.data.train_subset,
    batch_size=config.batch_size,
    model_kwargs=dict(config.model),
  )
  return rule, trainer


def checkpoints_for(workdir: Path, rule_name: str) -> MilestoneCheckpoints:
  return MilestoneCheckpoints(workdir_lib.Workdir(workdir).checkpoints(rule_name))


def train_rule(config, workdir: Path, rule_name: str, train_data: batches.TrainData, *, progress: bool = True) -> None:
  """Train `rule_name` for `config.seeds` seeds (vmapped), saving every milestone; resumes if checkpoints exist.

  Seeds are sharded over every device of every process (`leut.train.sharding`) and trained `config.seed_chunk`
  at a time (0 or absent: the largest chunk that fits, `sharding.auto_seed_chunk`); results do not depend on either.
  """
  spe = steps_per_epoch(config)
  _, trainer = build(config, rule_name, train_data)
  ckpts = checkpoints_for(workdir, rule_name)
  keys = sharding.seed_keys(config.seed, config.seeds)
  abstract = trainer.abstract_state(config.seeds)
  milestone_list = milestone_epochs(config, rule_name)
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
  for epoch in range(done_epoch + 1, last + 1):
    t0 = time.time()
    state, metrics = sharding.run_chunked(trainer.run_segment, state, keys, spe, chunk)
    metrics = sharding.to_host(metrics)
    rows = []
    for s in range(config.seeds):
      row = {"rule": rule_name, "seed": s, "epoch": epoch, "seconds": round(time.time() - t0, 3)}
      row.update({f"train_{k}": float(np.asarray(v)[s]) for k, v in metrics.items()})
      rows.append(row)
    workdir_lib.append_metrics(wd, rows)
    bar.set_postfix(acc=f"{float(np.mean(metrics['accuracy'])):.3f}")
    bar.update(1)
    if epoch in milestones:
      ckpts.save(epoch * spe, state)
  bar.close()
  ckpts.close()
