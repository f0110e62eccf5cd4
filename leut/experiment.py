"""`leut run`: from a config to checkpoints, tidy RSA tables, figures and a summary in one workdir.

WORKDIR/config.json          the config the workdir was made with (resume refuses a different one)
WORKDIR/checkpoints/<rule>/  Orbax milestone checkpoints, all seeds in each
WORKDIR/metrics.jsonl        training loss/accuracy per rule, seed and epoch
WORKDIR/results/*.csv        rsa, accuracy, weights (see `leut.evaluate`)
WORKDIR/figures/*.png|pdf    alignment over training per ROI, and more (see `leut.report`)
WORKDIR/summary.md           headline numbers, each traceable to a CSV row
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from leut import config as config_lib
from leut import distributed, report, rules
from leut import evaluate as evaluate_lib
from leut.data import cifar, things_fmri, things_images
from leut.data.errors import MissingDatasetError
from leut.train import batches
from leut.train import run as train_run


class DataPaths(NamedTuple):
  cifar_dir: Path
  things_fmri_dir: Path | None
  things_images_dir: Path
  brain_rdms_dir: Path | None


def resolve_data(config) -> DataPaths:
  """Where each dataset lives: the embedded synthetic default (written on first use) or the configured paths."""
  d = config.data
  if d.source == "synthetic":
    from leut.data import synthetic

    default = synthetic.ensure_default(Path(d.synthetic_dir))
    return DataPaths(Path(default.cifar_dir), Path(default.things_fmri_dir), Path(default.things_images_dir), None)
  if d.source != "files":
    raise ValueError(f"data.source must be 'synthetic' or 'files', not {d.source!r}")
  for field in ("cifar_dir", "things_images_dir"):
    if not d[field]:
      raise MissingDatasetError(f"data.source='files' needs data.{field}: set --config.data.{field}=PATH")
  if not d.things_fmri_dir and not d.brain_rdms_dir:
    raise MissingDatasetError(
      "data.source='files' needs brain data: set --config.data.things_fmri_dir=PATH "
      "(THINGS-fMRI single-trial betas) or --config.data.brain_rdms_dir=PATH "
      "(precomputed fmri_rdm_{ROI}_{sub}.npy + stim_order_{sub}.txt)"
    )
  opt = lambda p: Path(p) if p else None  # noqa: E731
  return DataPaths(Path(d.cifar_dir), opt(d.things_fmri_dir), Path(d.things_images_dir), opt(d.brain_rdms_dir))


def load_train_data(paths: DataPaths) -> tuple[batches.TrainData, cifar.CifarData]:
  data = cifar.load_cifar10(paths.cifar_dir)
  train = batches.TrainData(jnp.asarray(data.train_images), jnp.asarray(data.train_labels, jnp.int32))
  return train, data


def load_brain(config, paths: DataPaths, *, progress: bool = True):
  d = config.data
  subjects = list(d.subjects) if d.subjects else None
  if paths.brain_rdms_dir is not None:
    from leut.data import precomputed_rdms

    return precomputed_rdms.load_precomputed_rdms(paths.brain_rdms_dir, rois=list(d.rois), subjects=subjects)
  return things_fmri.load_brain_rdms(
    paths.things_fmri_dir,
    subjects=subjects,
    rois=tuple(d.rois),
    stimuli=d.stimuli,
    zscore=d.zscore,
    n_stimuli=d.n_stimuli or None,
    progress=progress,
  )


def load_eval_inputs(config, paths: DataPaths, cifar_data: cifar.CifarData, *, progress=True):
  brain = load_brain(config, paths, progress=progress)
  stimuli = {}
  for px in config.eval.resolutions:
    stimuli[(int(px), "native")] = things_images.load_stimulus_images(
      paths.things_images_dir, brain.stimuli, px=int(px)
    )
    if config.eval.upsampled:
      stimuli[(int(px), "upsampled")] = things_images.load_stimulus_images(
        paths.things_images_dir, brain.stimuli, px=int(px), upsampled=True
      )
  n_test = config.eval.test_images or len(cifar_data.test_labels)
  test = np.asarray(batches.normalize(jnp.asarray(cifar_data.test_images[:n_test])))
  return evaluate_lib.EvalInputs(brain, stimuli, test, np.asarray(cifar_data.test_labels[:n_test]))


def prepare_workdir(config, workdir: Path, *, command: str = "") -> None:
  """Create the workdir and record its config (and the command that made it), or check that an existing one was
  made with a compatible config."""
  workdir.mkdir(parents=True, exist_ok=True)
  path = workdir / "config.json"
  current = config_lib.to_dict(config)
  if command:
    current["command"] = command
  if path.exists():
    config_lib.check_compatible(json.loads(path.read_text()), current, workdir)
  distributed.barrier("leut-config-checked")  # every process has read the old file before process 0 replaces it
  if distributed.is_primary():
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(current, indent=2, sort_keys=True))
    tmp.replace(path)
  distributed.barrier("leut-config-written")


def run(config, workdir, *, progress: bool = True, command: str = "") -> dict:
  """Train all rules (resuming where checkpoints exist), evaluate every milestone, write tables/figures/summary."""
  workdir = Path(workdir)
  rules.check_names(config.rules)
  prepare_workdir(config, workdir, command=command)
  paths = resolve_data(config)
  train_data, cifar_data = load_train_data(paths)
  for rule_name in config.rules:
    train_run.train_rule(config, workdir, rule_name, train_data, progress=progress)
  return evaluate(config, workdir, paths=paths, data=(train_data, cifar_data), progress=progress)


def evaluate(config, workdir, *, paths: DataPaths | None = None, data=None, progress: bool = True) -> dict:
  """Re-score existing checkpoints (new brain data, resolutions or statistics) and rewrite results and report."""
  workdir = Path(workdir)
  paths = paths or resolve_data(config)
  train_data, cifar_data = data or load_train_data(paths)
  inputs = load_eval_inputs(config, paths, cifar_data, progress=progress)
  tables = evaluate_lib.evaluate_all(config, workdir, inputs, train_data, progress=progress)
  # Process 0 wrote the tables; the others must not read them (or draw figures) before it has finished.
  distributed.barrier("leut-results-written")
  if distributed.is_primary():
    report.write_report(workdir, config)
  distributed.barrier("leut-report-written")
  return tables
