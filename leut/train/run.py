"""Train every configured rule for all seeds at once, writing a checkpoint at each milestone epoch.

Resumption: each rule restarts from its newest verified checkpoint; since batches, augmentation and dropout are
pure functions of (seed key, step), the resumed run computes exactly what the uninterrupted run would have.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from leut import distributed, models, rules
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
  return MilestoneCheckpoints(Path(workdir) / "checkpoints" / rule_name)


def train_rule(config, workdir: Path, rule_name: str, train_data: batches.TrainData, *, progress: bool = True) -> None:
  """Train `rule_name` for `config.seeds` seeds (vmapped), saving every milestone; resumes if checkpoints exist.

  Seeds are sharded over every device of every process (`leut.train.sharding`) and trained `config.seed_chunk`
  at a time (0 or absent: the largest chunk that fits, `sharding.auto_seed_chunk`); results do not depend on either.
  """
  spe = steps_per_epoch(config)
  _, trainer = build(config, rule_name, train_data)
  ckpts = checkpoints_for(workdir, rule_name)
  keys = sharding.seed_keys(config.seed, config.seeds)
  restored = ckpts.restore_latest(trainer.abstract_state(config.seeds))
  if restored is None:
    state, done_epoch = sharding.reshard(trainer.init_all(keys), config.seeds), 0
    ckpts.save(0, state)
  else:
    step, state = restored
    done_epoch = step // spe
  last = max(milestone_epochs(config, rule_name))
  log = Path(workdir) / "metrics.jsonl"
  bar = tqdm(
    total=last,
    initial=done_epoch,
    desc=f"train {rule_name} ({config.seeds} seeds)",
    unit="epoch",
    disable=not progress or last == 0,
    leave=False,
  )
  milestones = set(milestone_epochs(config, rule_name))
  chunk = config.seeds
  if done_epoch < last:
    chunk = sharding.plan_seed_chunk(
      int(config.get("seed_chunk", 0) or 0), trainer.run_segment, trainer.abstract_state, config.seeds, spe
    )
  for epoch in range(done_epoch + 1, last + 1):
    t0 = time.time()
    state, metrics = sharding.run_chunked(trainer.run_segment, state, keys, spe, chunk)
    metrics = sharding.to_host(metrics)
    if distributed.is_primary():
      with log.open("a") as f:
        for s in range(config.seeds):
          row = {"rule": rule_name, "seed": s, "epoch": epoch, "seconds": round(time.time() - t0, 3)}
          row.update({f"train_{k}": float(np.asarray(v)[s]) for k, v in metrics.items()})
          f.write(json.dumps(row) + "\n")
    bar.set_postfix(acc=f"{float(np.mean(metrics['accuracy'])):.3f}")
    bar.update(1)
    if epoch in milestones:
      ckpts.save(epoch * spe, state)
  bar.close()
  ckpts.close()
