"""Score every milestone checkpoint against the brain: stream checkpoints → features → RDMs → RSA tables.

For each rule, checkpoints are restored one at a time (all seeds at once); features for every configured evaluation
resolution (and the upsampled arm) are extracted in fixed-size chunks on the device; model RDMs and their Spearman
correlations with each subject's ROI RDM and with the subject-mean RDM are computed in one jitted kernel. Output:

  results/rsa.csv       rule, seed, epoch, step, layer, roi, subject ('mean' = mean-RDM score), resolution, arm,
                        pairs ('all' | 'cross_run'), rho, note
  results/accuracy.csv  rule, seed, epoch, step, accuracy (held-out CIFAR test images, evaluation mode)
  results/weights.csv   rule, seed, epoch, layer, rel_displacement = ‖W_e − W_0‖ / ‖W_0‖ (kernels)
  results/noise_ceiling.csv, partial.csv, bootstrap.csv   see `leut.report.stimulus_stats`; partial RSA and the
                        stimulus bootstrap run at the milestones chosen by `eval.stats_epochs`
"""
from __future__ import annotations

import warnings
from functools import partial
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from leut import distributed, rsa
from leut.report import stimulus_stats
from leut.report.tables import layer_for_roi
from leut.rules.base import evaluate_fn
from leut.train import run as train_run
from leut.train import sharding


class EvalInputs(NamedTuple):
  brain: object  # leut.data.things_fmri.BrainData
  stimuli: dict  # (resolution, arm) -> S x px x px x 3 float32 normalised
  test_images: np.ndarray  # N x 32 x 32 x 3 float32 normalised
  test_labels: np.ndarray


class ConstantFeatureWarning(UserWarning):
  pass


def extract(eval_one, state, images_NxHxWx3: np.ndarray, chunk: int):
  """`(logits_SxNxK, feats{layer: SxNxU})` for every seed of `state`, in chunks of `chunk` images."""
  fn = _vmapped(eval_one)
  n = images_NxHxWx3.shape[0]
  logits, feats = [], []
  for start in range(0, n, chunk):
    x = images_NxHxWx3[start:start + chunk]
    pad = chunk - x.shape[0]
    if pad:
      x = np.concatenate([x, np.zeros((pad,) + x.shape[1:], x.dtype)])
    lg, ft = sharding.to_host(fn(state.params, state.model_state, state.rule_state, jnp.asarray(x)))
    keep = chunk - pad
    logits.append(lg[:, :keep])
    feats.append({k: v[:, :keep] for k, v in ft.items()})
  return (np.concatenate(logits, axis=1),
          {k: np.concatenate([f[k] for f in feats], axis=1) for k in feats[0]})


_VMAPPED = {}


def _vmapped(eval_one):
  if eval_one not in _VMAPPED:
    _VMAPPED[eval_one] = jax.jit(jax.vmap(eval_one, in_axes=(0, 0, 0, None)))
  return _VMAPPED[eval_one]


@partial(jax.jit, static_argnames=("metric", "method"))
def score_kernel(feats_NxSxU, brain_RxJxSxS, mask_SxS, *, metric="correlation", method="spearman"):
  """Per-subject and mean-RDM scores of N model feature sets against R ROIs × J subjects.

  Returns `(rho_NxRxJ, rho_mean_NxR)`; `mask_SxS` selects the stimulus pairs that count.
  """
  model_NxSxS = rsa.rdm(feats_NxSxU, metric=metric)
  per_subject = rsa.compare(model_NxSxS[:, None, None], brain_RxJxSxS[None], method=method, pair_mask=mask_SxS)
  mean_brain = brain_RxJxSxS.mean(axis=1)
  mean_rdm = rsa.compare(model_NxSxS[:, None], mean_brain[None], method=method, pair_mask=mask_SxS)
  return per_subject, mean_rdm


def pair_masks(brain, pairs) -> dict[str, np.ndarray]:
  s = len(brain.stimuli)
  masks = {}
  for name in pairs:
    if name == "all":
      masks[name] = np.ones((s, s), bool)
    elif name == "cross_run":
      masks[name] = np.asarray(rsa.cross_run_mask(brain.runs_JxS))
    else:
      raise ValueError(f"eval.pairs: unknown pair set {name!r}; use 'all' and/or 'cross_run'")
  return masks


def _displacements(params, params0, rule, epoch):
  rows = []
  flat = jax.tree_util.tree_leaves_with_path(params)
  flat0 = dict((jax.tree_util.keystr(p), v) for p, v in jax.tree_util.tree_leaves_with_path(params0))
  for path, w in flat:
    key = jax.tree_util.keystr(path)
    if not key.endswith("['kernel']"):
      continue
    w, w0 = np.asarray(w, np.float64), np.asarray(flat0[key], np.float64)
    diff = np.sqrt(((w - w0) ** 2).reshape(w.shape[0], -1).sum(1))
    base = np.sqrt((w0 ** 2).reshape(w.shape[0], -1).sum(1))
    layer = key.split("'")[1]
    for seed in range(w.shape[0]):
      rows.append({"rule": rule, "seed": seed, "epoch": epoch, "layer": layer,
                   "rel_displacement": float(diff[seed] / base[seed])})
  return rows


def _stats_steps(config, steps: list[int]) -> set[int]:
  if config.eval.stats_epochs == "all":
    return set(steps)
  if config.eval.stats_epochs != "first_last":
    raise ValueError(f"eval.stats_epochs must be 'first_last' or 'all', not {config.eval.stats_epochs!r}")
  return {min(steps), max(steps)} if steps else set()


def evaluate_rule(config, workdir: Path, rule_name: str, inputs: EvalInputs, train_data, *, masks=None,
                  controls=None, progress=True):
  """Score every verified checkpoint of one rule; returns (rsa, accuracy, weights, partial, bootstrap) rows."""
  rule, trainer = train_run.build(config, rule_name, train_data)
  rule_fn = evaluate_fn(rule)
  ckpts = train_run.checkpoints_for(workdir, rule_name)
  spe = train_run.steps_per_epoch(config)
  masks = masks if masks is not None else pair_masks(inputs.brain, list(config.eval.pairs))
  brain = jnp.asarray(inputs.brain.rdms_RxJxSxS)
  rsa_rows, acc_rows, w_rows, partial_rows, boot_rows = [], [], [], [], []
  params0 = None
  steps = ckpts.steps()
  stats_steps = _stats_steps(config, steps)
  headline = layer_for_roi(config)
  bar = tqdm(total=len(steps), desc=f"evaluate {rule_name}", unit="ckpt", disable=not progress, leave=False)
  for step, state in ckpts.iter_good(trainer.abstract_state(config.seeds)):
    epoch = step // spe
    logits, _ = extract(rule_fn, state, inputs.test_images, config.eval.batch_size)
    acc = (logits.argmax(-1) == inputs.test_labels[None]).mean(-1)
    acc_rows += [{"rule": rule_name, "seed": s, "epoch": epoch, "step": step, "accuracy": float(acc[s])}
                 for s in range(config.seeds)]
    if params0 is None:
      params0 = sharding.to_host(state.params)
    w_rows += _displacements(sharding.to_host(state.params), params0, rule_name, epoch)
    for (px, arm), images in inputs.stimuli.items():
      _, feats = extract(rule_fn, state, images, config.eval.batch_size)
      for layer, f_NxSxU in feats.items():
        const = np.asarray(rsa.constant_rows(jnp.asarray(f_NxSxU)))  # N x S
        for pairs, mask in masks.items():
          per_subj, mean_rdm = jax.device_get(score_kernel(jnp.asarray(f_NxSxU), brain, jnp.asarray(mask),
                                                           metric=config.eval.metric, method=config.eval.method))
          for seed in range(config.seeds):
            note = ""
            if const[seed].any():
              note = f"constant features for {int(const[seed].sum())}/{const.shape[1]} stimuli"
              warnings.warn(f"{rule_name} seed {seed} epoch {epoch} {layer} @ {px}px: {note}; "
                            "its scores are reported as NaN", ConstantFeatureWarning, stacklevel=2)
            for r, roi in enumerate(inputs.brain.rois):
              subjects = list(inputs.brain.subjects) + ["mean"]
              values = list(per_subj[seed, r]) + [mean_rdm[seed, r]]
              for subj, rho in zip(subjects, values):
                rsa_rows.append({"rule": rule_name, "seed": seed, "epoch": epoch, "step": step, "layer": layer,
                                 "roi": roi, "subject": subj, "resolution": px, "arm": arm, "pairs": pairs,
                                 "rho": float("nan") if note else float(rho), "note": note})
        if step not in stats_steps:
          continue
        where = dict(rule=rule_name, epoch=epoch, step=step, layer=layer, feats_NxSxU=f_NxSxU, brain=inputs.brain,
                     masks=masks, resolution=px, arm=arm, metric=config.eval.metric)
        if controls:
          partial_rows += stimulus_stats.partial_rows(**where, controls=controls[(px, arm)],
                                                      invalid_N=const.any(1))
        rois = [r for r in inputs.brain.rois if headline.get(r) == layer]
        if config.eval.n_boot and rois and (~const.any(1)).any():
          boot_rows += stimulus_stats.bootstrap_rows(**where, n_boot=config.eval.n_boot, rois=rois,
                                                     valid_N=~const.any(1))
    bar.update(1)
  bar.close()
  ckpts.close()
  return rsa_rows, acc_rows, w_rows, partial_rows, boot_rows


def evaluate_all(config, workdir: Path, inputs: EvalInputs, train_data, *, progress=True) -> dict[str, pd.DataFrame]:
  """Evaluate every configured rule and write the tidy tables under `workdir/results/`."""
  out = Path(workdir) / "results"
  out.mkdir(parents=True, exist_ok=True)
  masks = pair_masks(inputs.brain, list(config.eval.pairs))
  names = tuple(config.eval.partial_controls)
  controls = {k: stimulus_stats.control_rdms(v, names) for k, v in inputs.stimuli.items()} if names else None
  rows = {"rsa": [], "accuracy": [], "weights": [], "partial": [], "bootstrap": []}
  for rule_name in config.rules:
    for name, part in zip(rows, evaluate_rule(config, workdir, rule_name, inputs, train_data, masks=masks,
                                              controls=controls, progress=progress)):
      rows[name] += part
  tables = {name: pd.DataFrame(r) for name, r in rows.items() if r}
  tables["noise_ceiling"] = stimulus_stats.noise_ceiling_table(inputs.brain, masks, method=config.eval.method)
  for name in ("partial", "bootstrap"):
    if name not in tables:
      (out / f"{name}.csv").unlink(missing_ok=True)  # switched off: no stale table for the report to render
  if distributed.is_primary():
    for name, df in tables.items():
      df.to_csv(out / f"{name}.csv", index=False)
  return tables
