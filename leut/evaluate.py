"""Score every milestone checkpoint against the brain: stream checkpoints → features → RDMs → RSA tables.

For each rule, checkpoints are restored one at a time (all seeds at once) into a target built from the config alone
(no training image is read); features for every configured evaluation resolution (and the upsampled arm) are
extracted in fixed-size chunks on the device and read out as `eval.readout` says (`leut.readout`); each layer's model
RDM is built once (`model_rdms`) and every score and statistic of that checkpoint, layer, resolution and arm comes
from it: the Spearman correlations with each subject's ROI RDM and with the subject-mean RDM (one jitted kernel,
`score_rdms`), partial RSA, the stimulus bootstrap and the cross-validated best layer. Output (every score row also
carries `readout`):

  results/rsa.csv       rule, seed, epoch, step, layer, roi, subject ('mean' = mean-RDM score), resolution, arm,
                        pairs ('all' | 'cross_run'), rho, note
  results/accuracy.csv  rule, seed, epoch, step, accuracy (held-out CIFAR test images, evaluation mode), note
  results/weights.csv   rule, seed, epoch, layer, rel_displacement = ‖W_e − W_0‖ / ‖W_0‖ (kernels)
  results/noise_ceiling.csv, partial.csv, bootstrap.csv, best_layer_cv.csv   see `leut.scoring.stimulus_stats`;
                        partial RSA, the stimulus bootstrap and the cross-validated best layer run at the milestones
                        chosen by `eval.stats_epochs`
  results/bootstrap_draws.npz, bootstrap_differences.csv   the bootstrap draws of every bootstrap.csv row and the
                        paired differences between rules and epochs (`leut.scoring.bootstrap_differences`)
  results/cka.csv, encoding.csv   when `eval.metrics` lists them: linear CKA and ridge encoding of the brain
                        responses, from the same features as the RSA rows (`leut.scoring.metrics`)
  results/model_similarity.csv   model-to-model RDM similarities from the same RDMs: drift from epoch 0, inter-seed
                        consistency, rule vs rule (`leut.scoring.model_similarity`)
  results/two_level_bootstrap.csv   the contrasts of bootstrap_differences.csv by a bootstrap over seeds × stimuli
                        (`leut.scoring.two_level_bootstrap`)

Every configured milestone of every configured rule must have a good checkpoint (`check_checkpoints`, and a damaged
one found while scoring stops the evaluation): a table never silently lacks a rule or an epoch. The tables are
computed in memory and only then written, each atomically (`leut.workdir`), so a failed evaluation leaves the
previous ones in place.
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

from leut import config as config_lib
from leut import distributed, readout, rsa
from leut import workdir as workdir_lib
from leut.checkpoint import DamagedCheckpointError
from leut.errors import ConfigError, WorkdirError
from leut.report.tables import layer_for_roi
from leut.rsa.precision import HIGHEST
from leut.rules.base import feedforward
from leut.scoring import (
  bn_calibration,
  bootstrap_differences,
  brain_truth,
  cka_scores,
  encoding_scores,
  metric_bootstrap,
  model_similarity,
  stimulus_stats,
  two_level_bootstrap,
)
from leut.scoring import metrics as metrics_lib
from leut.train import milestones, sharding
from leut.xla_cpu import network_jit


class EvalInputs(NamedTuple):
  brain: object  # leut.data.things_fmri.BrainData
  stimuli: dict  # (resolution, arm) -> S x px x px x 3 float32 normalised
  test_images: np.ndarray  # N x 32 x 32 x 3 float32 normalised
  test_labels: np.ndarray
  responses: object = None  # leut.data.responses.ResponseData aligned to brain.stimuli, for cka / encoding
  calibration: object = None  # leut.bn_calibration.CalibrationImages when eval.bn_calibration names sources
  truth_dir: object = None  # a synthetic release's folder with its simulation truth (`brain_truth.truth_dir`)


class ConstantFeatureWarning(UserWarning):
  pass


class NonFiniteSeedWarning(UserWarning):
  pass


# `note` of a seed's rows whose score is NaN (the report leaves these seeds out and counts them, `leut.report`):
NON_FINITE_FEATURES = "non_finite_features"  # this layer's features hold NaN/inf (a diverged network)
NON_FINITE_PARAMETERS = "non_finite_parameters"  # features finite, but the network's state or logits are not
NON_FINITE_LOGITS = "non_finite_logits"  # accuracy.csv: the test-image logits hold NaN/inf
CONSTANT_RDM = "constant_rdm"  # every stimulus pair at the same distance: no rank correlation is defined


def non_finite_seeds(tree) -> np.ndarray:
  """`N` bools: seeds (leading axis of every leaf) with a NaN/inf in any floating leaf of `tree` (host arrays)."""
  bad = None
  for x in jax.tree.leaves(tree):
    x = np.asarray(x)
    if np.issubdtype(x.dtype, np.inexact):
      b = ~np.isfinite(x.reshape(x.shape[0], -1)).all(-1)
      bad = b if bad is None else bad | b
  return bad


def rho_note(*, non_finite_features: bool, diverged: bool, n_constant: int, n_stimuli: int, undefined: bool) -> str:
  """The `note` of a seed's rsa.csv rows; non-empty means the rows' rho is NaN (see the constants above).

  `undefined`: the kernel found no correlation for any ROI and subject (a constant model RDM on the pairs).
  """
  if non_finite_features:
    return NON_FINITE_FEATURES
  if diverged:
    return NON_FINITE_PARAMETERS
  if n_constant:
    return f"constant features for {n_constant}/{n_stimuli} stimuli"
  if undefined:
    return CONSTANT_RDM
  return ""


class RuleResults(NamedTuple):
  """Rows (lists of dicts) of one rule's tables; `bootstrap_draws[i]` holds the B draws of `bootstrap[i]`, and
  `seed_draws[i]` its per-seed `(observed_N, draws_NxB)` (`two_level_bootstrap`)."""

  rsa: list
  accuracy: list
  weights: list
  partial: list
  bootstrap: list
  best_layer_cv: list
  bootstrap_draws: list
  seed_draws: list
  cka: list  # eval.metrics: results/cka.csv rows (`leut.scoring.cka_scores`)
  encoding: list  # results/encoding.csv rows (`leut.scoring.encoding_scores`)


def extract(eval_one, state, images_NxHxWx3: np.ndarray, chunk: int, seed_chunk: int = 0):
  """`(logits_SxNxK, feats{layer: SxNxU})` for every seed of `state`, in chunks of `chunk` images and
  `seed_chunk` seeds (0: all seeds at once; see `plan_seed_chunk`). A seed's features do not depend on the chunks."""
  n_seeds = jax.tree.leaves(state.params)[0].shape[0]
  if 0 < seed_chunk < n_seeds:
    parts = [
      extract(eval_one, _seed_slice(state, a, b), images_NxHxWx3, chunk)
      for a, b in sharding.chunk_bounds(n_seeds, seed_chunk)
    ]
    return (
      np.concatenate([lg for lg, _ in parts]),
      {k: np.concatenate([ft[k] for _, ft in parts]) for k in parts[0][1]},
    )
  fn = _vmapped(eval_one)
  n = images_NxHxWx3.shape[0]
  logits, feats = [], []
  for start in range(0, n, chunk):
    x = images_NxHxWx3[start : start + chunk]
    pad = chunk - x.shape[0]
    if pad:
      x = np.concatenate([x, np.zeros((pad,) + x.shape[1:], x.dtype)])
    lg, ft = sharding.to_host(fn(state.params, state.model_state, state.rule_state, jnp.asarray(x)))
    keep = chunk - pad
    logits.append(lg[:, :keep])
    feats.append({k: v[:, :keep] for k, v in ft.items()})
  return (np.concatenate(logits, axis=1), {k: np.concatenate([f[k] for f in feats], axis=1) for k in feats[0]})


class _EvalState(NamedTuple):
  params: object
  model_state: object
  rule_state: object


def _seed_slice(state, start: int, stop: int) -> _EvalState:
  return _EvalState(*sharding.take_seeds((state.params, state.model_state, state.rule_state), start, stop))


# Bytes one image needs per input pixel in feature extraction (activations, patch matrices and XLA temporaries of the
# protocol CNN, float32), an upper bound on `compile().memory_analysis()` at 64 and 224 px: 585-624 B for the
# feed-forward rules, 1,053-1,097 B for predictive coding (its inference loop).
BYTES_PER_INPUT_PIXEL = 1200


def extraction_bytes(eval_one, state, image_shape, chunk: int, n_seeds: int) -> int:
  """Per-device bytes (arguments + outputs + temporaries) of the compiled extraction of `n_seeds` seeds."""
  shard = sharding.seed_sharding(n_seeds)
  trees = (state.params, state.model_state, state.rule_state)
  abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct((n_seeds,) + x.shape[1:], x.dtype, sharding=shard), trees)
  x = jax.ShapeDtypeStruct((chunk,) + tuple(image_shape), jnp.float32)
  m = _vmapped(eval_one).lower(*abstract, x).compile().memory_analysis()
  if m is None:
    raise RuntimeError("no memory analysis on this backend")
  return int(m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes)


def plan_seed_chunk(config, eval_one, state, image_shape) -> int:
  """Seeds extracted at a time: `config.seed_chunk` if positive, else all seeds when a conservative estimate
  (`BYTES_PER_INPUT_PIXEL`) fits a quarter of the per-device budget, else the largest chunk whose compiled
  extraction fits (`sharding.largest_fitting_chunk`), so 64 seeds at 224 px evaluate on any device."""
  n_seeds = jax.tree.leaves(state.params)[0].shape[0]
  configured = int(config.get("seed_chunk", 0) or 0)
  if configured > 0:
    return min(configured, n_seeds)
  chunk = int(config.eval.batch_size)
  per_seed = chunk * int(np.prod(image_shape[:2])) * BYTES_PER_INPUT_PIXEL
  per_device_seeds = -(-n_seeds // jax.device_count())
  if per_device_seeds * per_seed <= sharding.device_memory_budget() // 4:
    return n_seeds
  return sharding.largest_fitting_chunk(
    lambda k: extraction_bytes(eval_one, state, image_shape, chunk, k), n_seeds, fallback=(64 << 20, per_seed)
  )


_VMAPPED = {}


def _vmapped(eval_one):
  if eval_one not in _VMAPPED:
    _VMAPPED[eval_one] = network_jit(jax.vmap(eval_one, in_axes=(0, 0, 0, None)))
  return _VMAPPED[eval_one]


class BrainTargets(NamedTuple):
  """The brain side of `score_kernel` for one pair set, prepared once per evaluation (`brain_targets`)."""

  per_subject_RxJxP: jax.Array  # spearman / pearson: centred unit-norm (rank) vectors; else the masked vectors
  mean_RxP: jax.Array  # the same for the subject-mean RDM of each ROI
  weights_P: jax.Array  # 0/1 pair weights of the pair set


@partial(jax.jit, static_argnames=("method",))
def brain_targets(brain_RxJxSxS, mask_SxS, *, method: str = "spearman") -> BrainTargets:
  """Rank (spearman), centre and normalise the brain RDMs once, so each model is scored by one matrix product.

  z = centred_unit(rank_average(v, w), w) (pearson: no ranking), and rho(model, brain) = <z_model, z_brain>, which
  is `rsa.compare` (PROTOCOL §3.2) with the ranking of the 24 brain vectors done once instead of per checkpoint.
  """
  brain = jnp.asarray(brain_RxJxSxS, jnp.float32)
  per_RxJxP = rsa.upper_tri(brain)
  mean_RxP = rsa.upper_tri(brain.mean(axis=1))
  w_P = rsa.upper_tri(jnp.asarray(mask_SxS)).astype(jnp.float32)
  if method in ("spearman", "pearson"):
    prep = (lambda v: rsa.rank_average(v, w_P)) if method == "spearman" else (lambda v: v)
    per_RxJxP, mean_RxP = (rsa.centred_unit(prep(v), w_P) for v in (per_RxJxP, mean_RxP))
  return BrainTargets(per_RxJxP, mean_RxP, w_P)


def model_rdms(feats_NxSxU, metric: str = "correlation") -> jax.Array:
  """The `NxSxS` RDMs of N seeds' features (`rsa.rdm`): built once per checkpoint, layer, resolution and arm; every
  score and statistic of that condition (RSA rows, partial RSA, bootstrap, CV best layer) is computed from them."""
  return rsa.rdm(jnp.asarray(feats_NxSxU), metric=metric)


@partial(jax.jit, static_argnames=("method",))
def score_rdms(model_NxP, targets: BrainTargets, *, method="spearman"):
  """Per-subject and mean-RDM scores of N model RDMs (upper triangles) against R ROIs × J subjects (`brain_targets`).

  Returns `(rho_NxRxJ, rho_mean_NxR)`, restricted to the pairs of the targets' pair set; NaN where undefined (a
  constant model RDM on those pairs, NaN/inf features: `rsa.compare`). Products at full float32 on every backend
  (`leut.rsa.precision`).
  """
  w_P = targets.weights_P
  if method in ("spearman", "pearson"):
    z_NxP = rsa.centred_unit(rsa.rank_average(model_NxP, w_P) if method == "spearman" else model_NxP, w_P)
    return _products(z_NxP, targets)
  per_subject = rsa.compare(model_NxP[:, None, None], targets.per_subject_RxJxP[None], method, pair_mask=w_P)
  mean_rdm = rsa.compare(model_NxP[:, None], targets.mean_RxP[None], method, pair_mask=w_P)
  return per_subject, mean_rdm


def _products(z_NxP, targets: BrainTargets):
  return (
    jnp.einsum("np,rjp->nrj", z_NxP, targets.per_subject_RxJxP, precision=HIGHEST),
    jnp.einsum("np,rp->nr", z_NxP, targets.mean_RxP, precision=HIGHEST),
  )


@jax.jit
def score_and_rank_rdms(model_NxP, targets: BrainTargets):
  """`score_rdms` by Spearman's ρ that also returns the model RDMs' standardised ranks on the targets' pair set,
  `(rho_NxRxJ, rho_mean_NxR, z_NxP)` with z = centred_unit(rank_average(v, w), w) (`brain_targets`), so that
  ρ(model, brain) = <z_model, z_brain> (Spearman 1904, Am. J. Psychol. 15:72).

  On the all-pairs set (every weight 1, `all_pairs_set`) z is `model_similarity.standardised_ranks(model_NxP)` bit
  for bit (the ranks are integers or halves, exact in float32 for P < 2**24, and a weight of 1 changes no sum), so
  the model-to-model analyses reuse the ranking done here instead of sorting every model RDM a second time.
  """
  z_NxP = rsa.centred_unit(rsa.rank_average(model_NxP, targets.weights_P), targets.weights_P)
  return (*_products(z_NxP, targets), z_NxP)


def all_pairs_set(targets: dict[str, BrainTargets]) -> str | None:
  """The name of the pair set whose weights are all 1 (every stimulus pair: `pair_masks`'s 'all'), or None."""
  return next((name for name, t in targets.items() if bool(np.all(np.asarray(t.weights_P) == 1))), None)


def score_kernel(feats_NxSxU, targets: BrainTargets, *, metric="correlation", method="spearman"):
  """`score_rdms` of the RDMs of N feature sets (`model_rdms`), for callers holding features only."""
  return score_rdms(rsa.upper_tri(model_rdms(feats_NxSxU, metric)), targets, method=method)


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
    base = np.sqrt((w0**2).reshape(w.shape[0], -1).sum(1))
    layer = key.split("'")[1]
    for seed in range(w.shape[0]):
      rows.append(
        {"rule": rule, "seed": seed, "epoch": epoch, "layer": layer, "rel_displacement": float(diff[seed] / base[seed])}
      )
  return rows


def _stats_steps(config, steps: list[int]) -> set[int]:
  if config.eval.stats_epochs == "all":
    return set(steps)
  if config.eval.stats_epochs != "first_last":
    raise ValueError(f"eval.stats_epochs must be 'first_last' or 'all', not {config.eval.stats_epochs!r}")
  return {min(steps), max(steps)} if steps else set()


def brain_targets_for(brain, masks: dict, method: str) -> dict[str, BrainTargets]:
  """`brain_targets` of every pair set (once per evaluation, shared by every rule and checkpoint)."""
  rdms = jnp.asarray(brain.rdms_RxJxSxS)
  return {name: brain_targets(rdms, jnp.asarray(mask), method=method) for name, mask in masks.items()}


_MAP_FEATURES = {}


def map_features(network, dims: int, seed: int):
  """An evaluation function like `rules.base.feedforward(network)` whose features are each layer's whole activation
  map, flattened and, when it has more than `dims` dimensions, randomly projected to `dims`
  (`readout.random_projection`, key `jax.random.key(seed)`), chunk by chunk on the device. One object per
  (network, dims, seed), so its compilation is shared by every checkpoint."""
  cache_key = (network, dims, seed)
  if cache_key not in _MAP_FEATURES:

    def represent(params, model_state, rule_state, x_NxHxWx3):
      del rule_state
      logits, acts, _ = network.apply(params, model_state, x_NxHxWx3, train=False)
      feats = {}
      for name, a in acts.items():
        flat = a.reshape(a.shape[0], -1)
        feats[name] = readout.random_projection(flat, jax.random.key(seed), dims=dims) if flat.shape[1] > dims else flat
      return logits, feats

    _MAP_FEATURES[cache_key] = represent
  return _MAP_FEATURES[cache_key]


def readout_function(config, rule, network, rule_name: str):
  """The evaluation function of `eval.readout`: the rule's own (`mean`, the published spatial means) or
  `map_features` (`flatten`, `pca`), which needs the plain network's maps and so a rule that evaluates with it."""
  how = config.eval.get("readout", "mean")
  if how == "mean":
    return rule.represent
  if rule.represent is not feedforward(network):
    raise ConfigError(
      f"eval.readout={how!r} reads the network's activation maps, but rule {rule_name!r} computes its own features "
      "(an inference loop or spikes); use --config.eval.readout=mean for it"
    )
  return map_features(network, int(config.eval.readout_dims), int(config.eval.readout_seed))


def apply_readout(config, feats: dict) -> dict:
  """`pca`: each layer's `NxSxU` features (maps flattened or projected by `map_features`) to their principal
  component scores (`readout.readout`); other readouts unchanged."""
  if config.eval.get("readout", "mean") != "pca":
    return feats
  k = int(config.eval.readout_components)
  return {layer: np.asarray(readout.readout(f, "pca", components=k)) for layer, f in feats.items()}


def missing_milestones(config, workdir: Path, rule_name: str) -> list[int]:
  """Configured milestone epochs of `rule_name` without a finished (digest-recorded) checkpoint in `workdir`."""
  folder = workdir_lib.Workdir(workdir).checkpoints(rule_name)
  spe = milestones.steps_per_epoch(config)
  epochs = config_lib.milestone_epochs(config, rule_name)
  if not folder.is_dir():
    return epochs
  ckpts = milestones.checkpoints_for(workdir, rule_name)
  have = set(ckpts.steps())
  ckpts.close()
  return [e for e in epochs if e * spe not in have]


def check_checkpoints(config, workdir: Path) -> None:
  """Raise `WorkdirError` naming every configured rule and milestone epoch that has no finished checkpoint."""
  problems = []
  for rule_name in config.rules:
    missing = missing_milestones(config, workdir, rule_name)
    if missing == config_lib.milestone_epochs(config, rule_name):
      problems.append(f"{rule_name} was never trained here (no finished checkpoint)")
    elif missing:
      problems.append(f"{rule_name} has no finished checkpoint of milestone epoch(s) {missing}")
  if problems:
    raise WorkdirError(
      f"cannot evaluate {workdir}: " + "; ".join(problems) + ". Run `leut run` with this config and "
      "--workdir to train what is missing (it resumes from the checkpoints there)"
    )


def _damaged(rule_name: str, epoch: int, step: int, err: Exception) -> WorkdirError:
  return WorkdirError(
    f"{rule_name}: the checkpoint of milestone epoch {epoch} (step {step}) is damaged and was set aside ({err}); "
    "run `leut run` with this config and --workdir to retrain it, then evaluate again"
  )


def verify_checkpoints(config, workdir: Path) -> None:
  """Restore and check every configured milestone of every rule before any scoring, so a damaged one stops the
  evaluation in seconds (it is set aside and named with its rule and epoch)."""
  check_checkpoints(config, workdir)
  spe = milestones.steps_per_epoch(config)
  for rule_name in config.rules:
    _, trainer = milestones.build(config, rule_name)
    ckpts = milestones.checkpoints_for(workdir, rule_name)
    abstract = trainer.abstract_state(config.seeds)
    for epoch in config_lib.milestone_epochs(config, rule_name):
      try:
        ckpts.restore_verified(epoch * spe, abstract)
      except DamagedCheckpointError as err:
        raise _damaged(rule_name, epoch, epoch * spe, err) from err
    ckpts.close()


def seed_notes(non_finite_N, diverged_N, constant_NxS, undefined_N) -> list[str]:
  """Each seed's rsa.csv note for one scored layer ('' when its ρ is defined; `rho_note` says which cause wins)."""
  return [
    rho_note(
      non_finite_features=bool(non_finite_N[seed]),
      diverged=bool(diverged_N[seed]),
      n_constant=int(constant_NxS[seed].sum()),
      n_stimuli=constant_NxS.shape[1],
      undefined=bool(undefined_N[seed]),
    )
    for seed in range(len(non_finite_N))
  ]


def rsa_table_rows(
  per_subj_NxRxJ, mean_rdm_NxR, notes_N, brain, *, rule, epoch, step, layer, resolution, arm, pairs, **extra
) -> list[dict]:
  """rsa.csv rows of one scored layer and pair set: one per seed, ROI and subject, plus subject 'mean' (the score on
  the mean RDM); a seed with a note scores NaN. `extra` columns (e.g. `bn_calibration`) come last."""
  subjects = list(brain.subjects) + ["mean"]
  rows = []
  for seed, note in enumerate(notes_N):
    for r, roi in enumerate(brain.rois):
      for subject, rho in zip(subjects, list(per_subj_NxRxJ[seed, r]) + [mean_rdm_NxR[seed, r]]):
        rows.append(
          {
            "rule": rule,
            "seed": seed,
            "epoch": epoch,
            "step": step,
            "layer": layer,
            "roi": roi,
            "subject": subject,
            "resolution": resolution,
            "arm": arm,
            "pairs": pairs,
            "rho": float("nan") if note else float(rho),
            "note": note,
            **extra,
          }
        )
  return rows


def bn_calibration_rows(
  config, rule_fn, network, state, inputs, targets, *, rule: str, epoch: int, step: int, diverged_N, plan
) -> list[dict]:
  """rsa.csv rows of one checkpoint under every configured BatchNorm calibration source (paper C's factorial,
  `leut.scoring.bn_calibration`), at every resolution and arm: the published rows' keys plus `bn_calibration`.
  Calibrated statistics are computed once per (source, size) and shared by the resolutions and arms that use them;
  `plan(images)` gives the seeds extracted at a time (`plan_seed_chunk`)."""
  calib = inputs.calibration
  states = {}
  rows = []
  for (px, arm), images in inputs.stimuli.items():
    for source in calib.sources:
      key = calib.key(source, px, arm)
      if key not in states:
        states[key] = bn_calibration.calibrate(network, state.params, state.model_state, calib.batches(source, px, arm))
      calibrated = _EvalState(state.params, states[key], state.rule_state)
      _, feats = extract(rule_fn, calibrated, images, config.eval.batch_size, plan(images))
      for layer, f_NxSxU in apply_readout(config, feats).items():
        f = jnp.asarray(f_NxSxU)
        const = np.asarray(rsa.constant_rows(f))
        non_finite_N = np.asarray(rsa.non_finite_rows(f)).any(1)
        model_NxP = rsa.upper_tri(model_rdms(f, config.eval.metric))
        for pairs, target in targets.items():
          per_subj, mean_rdm = jax.device_get(score_rdms(model_NxP, target, method=config.eval.method))
          notes = seed_notes(non_finite_N, diverged_N, const, np.isnan(per_subj).all(axis=(1, 2)))
          keys = dict(rule=rule, epoch=epoch, step=step, layer=layer, resolution=px, arm=arm, pairs=pairs)
          rows += rsa_table_rows(per_subj, mean_rdm, notes, inputs.brain, **keys, **{bn_calibration.COLUMN: source})
  return rows


def evaluate_rule(
  config,
  workdir: Path,
  rule_name: str,
  inputs: EvalInputs,
  *,
  masks=None,
  controls=None,
  targets=None,
  progress=True,
  similarity=None,
  metric_boot=None,
):
  """Score every verified checkpoint of one rule; returns its `RuleResults`. The restore target comes from the
  config alone (`milestones.build` without training data): no training image is read. `similarity`: a
  `model_similarity.ModelSimilarity` that also receives every model RDM, as the all-pairs standardised ranks the
  scoring kernel has just computed (`score_and_rank_rdms`; Spearman with an all-pairs set) or else as the RDM;
  `metric_boot`: a `metric_bootstrap.MetricBootstrap` that bootstraps the CKA and encoding scores at the statistics
  milestones."""
  rule, trainer = milestones.build(config, rule_name)
  rule_fn = readout_function(config, rule, trainer.network, rule_name)
  ckpts = milestones.checkpoints_for(workdir, rule_name)
  spe = milestones.steps_per_epoch(config)
  masks = masks if masks is not None else pair_masks(inputs.brain, list(config.eval.pairs))
  targets = targets if targets is not None else brain_targets_for(inputs.brain, masks, config.eval.method)
  rsa_rows, acc_rows, w_rows, partial_rows, boot_rows, best_rows, boot_draws, seed_draws = ([] for _ in range(8))
  cka_rows, enc_rows = [], []
  chosen = metrics_lib.chosen(config)
  params0 = None
  seed_chunks = {}  # image shape -> seeds extracted at a time
  steps = [e * spe for e in config_lib.milestone_epochs(config, rule_name)]  # ascending, 0 first
  stats_steps = _stats_steps(config, steps)
  headline = layer_for_roi(config)
  # Spearman on every pair: the scoring kernel's standardised ranks are the model-to-model analyses' too (ranked once)
  ranked_pairs = all_pairs_set(targets) if similarity is not None and config.eval.method == "spearman" else None
  bar = tqdm(total=len(steps), desc=f"evaluate {rule_name}", unit="ckpt", disable=not progress, leave=False)
  abstract = trainer.abstract_state(config.seeds)
  for step in steps:
    epoch = step // spe
    try:
      state = ckpts.restore_verified(step, abstract)
    except DamagedCheckpointError as err:
      raise _damaged(rule_name, epoch, step, err) from err

    def plan(images):
      if images.shape[1:] not in seed_chunks:
        seed_chunks[images.shape[1:]] = plan_seed_chunk(config, rule_fn, state, images.shape[1:])
      return seed_chunks[images.shape[1:]]

    logits, _ = extract(rule_fn, state, inputs.test_images, config.eval.batch_size, plan(inputs.test_images))
    bad_logits_N = non_finite_seeds(logits)
    acc = np.where(bad_logits_N, np.nan, (logits.argmax(-1) == inputs.test_labels[None]).mean(-1))
    acc_rows += [
      {
        "rule": rule_name,
        "seed": s,
        "epoch": epoch,
        "step": step,
        "accuracy": float(acc[s]),
        "note": NON_FINITE_LOGITS if bad_logits_N[s] else "",
      }
      for s in range(config.seeds)
    ]
    params = sharding.to_host(state.params)
    if step == 0:  # the displacement baseline is the initialisation itself, never a later milestone
      params0 = params
    w_rows += _displacements(params, params0, rule_name, epoch)
    # A diverged seed (NaN/inf weights, statistics or logits) is scored NaN in every layer, even where its features
    # happen to be finite; `leut.train.milestones` flags it in metrics.jsonl.
    diverged_N = bad_logits_N | non_finite_seeds((params, sharding.to_host((state.model_state, state.rule_state))))
    for s in np.flatnonzero(diverged_N):
      warnings.warn(
        f"{rule_name} seed {s} epoch {epoch}: non-finite weights or logits (a diverged seed); its scores are NaN",
        NonFiniteSeedWarning,
        stacklevel=2,
      )
    for (px, arm), images in inputs.stimuli.items():
      _, feats = extract(rule_fn, state, images, config.eval.batch_size, plan(images))
      feats = apply_readout(config, feats)
      where = dict(rule=rule_name, epoch=epoch, step=step, resolution=px, arm=arm)
      stats_here = step in stats_steps
      boot_here = metric_boot if stats_here else None
      if "cka" in chosen:
        cka_rows += cka_scores.cka_rows(feats, inputs.responses, invalid_N=diverged_N, **where)
        if boot_here is not None:
          boot_here.add_cka(feats, inputs.responses, headline=headline, invalid_N=diverged_N, **where)
      if "encoding" in chosen:
        enc_rows += encoding_scores.encoding_rows(
          feats,
          inputs.responses,
          invalid_N=diverged_N,
          seed=config.seed,
          bootstrap=boot_here,
          headline=headline,
          **where,
        )
      n_splits = config.eval.get("best_layer_splits", 0) if stats_here and len(feats) > 1 else 0
      layer_rdms = {}  # layer -> NxP upper triangles, for the cross-validated best layer
      layer_flags = {}  # layer -> (constant_N, non_finite_N)
      for layer, f_NxSxU in feats.items():
        f = jnp.asarray(f_NxSxU)
        const = np.asarray(rsa.constant_rows(f))  # N x S
        non_finite_N = np.asarray(rsa.non_finite_rows(f)).any(1)
        model_NxSxS = model_rdms(f, config.eval.metric)  # the one RDM of this checkpoint, layer, resolution, arm
        del f
        model_NxP = rsa.upper_tri(model_NxSxS)
        if n_splits:
          layer_rdms[layer] = model_NxP
          layer_flags[layer] = (const.any(1), non_finite_N)
        invalid_N = const.any(1) | non_finite_N | diverged_N  # scored NaN (rsa.csv), left out of the statistics
        z_NxP = None  # the all-pairs standardised ranks, for the model-to-model analyses
        for pairs in masks:
          if pairs == ranked_pairs:
            per_subj, mean_rdm, z_NxP = score_and_rank_rdms(model_NxP, targets[pairs])
            per_subj, mean_rdm = jax.device_get((per_subj, mean_rdm))
          else:
            per_subj, mean_rdm = jax.device_get(score_rdms(model_NxP, targets[pairs], method=config.eval.method))
          undefined_N = np.isnan(per_subj).all(axis=(1, 2))
          invalid_N |= undefined_N
          notes = seed_notes(non_finite_N, diverged_N, const, undefined_N)
          for seed, note in enumerate(notes):
            if note.startswith("constant"):
              warnings.warn(
                f"{rule_name} seed {seed} epoch {epoch} {layer} @ {px}px: {note}; its scores are reported as NaN",
                ConstantFeatureWarning,
                stacklevel=2,
              )
          keys = dict(rule=rule_name, epoch=epoch, step=step, layer=layer, resolution=px, arm=arm, pairs=pairs)
          rsa_rows += rsa_table_rows(per_subj, mean_rdm, notes, inputs.brain, **keys)
        if similarity is not None:
          similarity.add(
            rule=rule_name,
            epoch=epoch,
            layer=layer,
            resolution=px,
            arm=arm,
            **(dict(model_NxP=model_NxP) if z_NxP is None else dict(z_NxP=z_NxP)),
            invalid_N=invalid_N,
            keep=stats_here and px == int(list(config.eval.resolutions)[0]) and arm == "native",
          )
        if not stats_here:
          continue
        where = dict(
          rule=rule_name,
          epoch=epoch,
          step=step,
          layer=layer,
          brain=inputs.brain,
          masks=masks,
          resolution=px,
          arm=arm,
        )
        if controls:
          partial_rows += stimulus_stats.partial_rows(
            **where, model_NxP=model_NxP, controls=controls[(px, arm)], invalid_N=invalid_N
          )
        rois = [r for r in inputs.brain.rois if headline.get(r) == layer]
        if config.eval.n_boot and rois and (~invalid_N).any():
          rows, draws = stimulus_stats.bootstrap_draws(
            **where,
            model_NxSxS=model_NxSxS,
            n_boot=config.eval.n_boot,
            rois=rois,
            valid_N=~invalid_N,
            seed_draws=seed_draws,
          )
          boot_rows += rows
          boot_draws += draws
      if n_splits:
        best_rows += stimulus_stats.best_layer_rows(
          rule=rule_name,
          epoch=epoch,
          step=step,
          rdms=layer_rdms,
          flags=layer_flags,
          brain=inputs.brain,
          masks=masks,
          resolution=px,
          arm=arm,
          method=config.eval.method,
          n_splits=n_splits,
          seed=config.seed,
          invalid_N=diverged_N,
        )
    if bn_calibration.applies(config, epoch):  # paper C's BN calibration factorial, beside the published rows
      rsa_rows += bn_calibration_rows(
        config,
        rule_fn,
        trainer.network,
        state,
        inputs,
        targets,
        rule=rule_name,
        epoch=epoch,
        step=step,
        diverged_N=diverged_N,
        plan=plan,
      )
    bar.update(1)
  bar.close()
  ckpts.close()
  bn_calibration.label_published(config, rsa_rows)
  how = config.eval.get("readout", "mean")
  for row in (*rsa_rows, *partial_rows, *boot_rows, *best_rows, *cka_rows, *enc_rows):
    row["readout"] = how  # every score row says how its features were read out
  return RuleResults(
    rsa_rows, acc_rows, w_rows, partial_rows, boot_rows, best_rows, boot_draws, seed_draws, cka_rows, enc_rows
  )


def evaluate_all(config, workdir: Path, inputs: EvalInputs, *, progress=True) -> dict[str, pd.DataFrame]:
  """Evaluate every configured rule and write the tidy tables under `workdir/results/` (`write_tables`)."""
  if metrics_lib.response_metrics(config) and inputs.responses is None:
    raise ConfigError(
      f"eval.metrics {metrics_lib.response_metrics(config)} need the brain responses, but the evaluation inputs "
      "hold none: build them with leut.experiment.load_eval_inputs"
    )
  masks = pair_masks(inputs.brain, list(config.eval.pairs))
  targets = brain_targets_for(inputs.brain, masks, config.eval.method)
  names = tuple(config.eval.partial_controls)
  controls = {k: stimulus_stats.control_rdms(v, names) for k, v in inputs.stimuli.items()} if names else None
  rows = RuleResults(*([] for _ in RuleResults._fields))
  similarity = model_similarity.ModelSimilarity(rules=config.rules, readout=config.eval.get("readout", "mean"))
  metric_boot = None
  if config.eval.n_boot and metrics_lib.response_metrics(config):
    metric_boot = metric_bootstrap.MetricBootstrap(
      n_boot=config.eval.n_boot, rules=config.rules, readout=config.eval.get("readout", "mean")
    )
  for rule_name in config.rules:
    part = evaluate_rule(
      config,
      workdir,
      rule_name,
      inputs,
      masks=masks,
      controls=controls,
      targets=targets,
      progress=progress,
      similarity=similarity,
      metric_boot=metric_boot,
    )
    for acc, new in zip(rows, part):
      acc += new
  draw_lists = ("bootstrap_draws", "seed_draws")
  tables = {name: pd.DataFrame(r) for name, r in rows._asdict().items() if r and name not in draw_lists}
  tables["model_similarity"] = similarity.table()
  if metric_boot is not None:
    tables.update(metric_boot.tables())
  tables["noise_ceiling"] = stimulus_stats.noise_ceiling_table(inputs.brain, masks, method=config.eval.method)
  if inputs.truth_dir is not None:
    tables["brain_truth"] = brain_truth.truth_table(inputs.brain, inputs.truth_dir, seed=config.seed)
  if bn_calibration.configured(config):
    tables["bn_calibration"] = bn_calibration.summary_table(tables["rsa"])
  draws_CxB = np.stack(rows.bootstrap_draws) if rows.bootstrap_draws else None  # 8 B bytes per bootstrap.csv row
  if draws_CxB is not None:
    tables["bootstrap_differences"] = bootstrap_differences.difference_table(
      tables["bootstrap"], draws_CxB, rules=config.rules
    )
    tables["two_level_bootstrap"] = two_level_bootstrap.difference_table(
      tables["bootstrap"],
      np.stack([obs for obs, _ in rows.seed_draws]),
      np.stack([d for _, d in rows.seed_draws]),
      rules=config.rules,
    )
  if distributed.is_primary():
    write_tables(workdir_lib.Workdir(workdir), tables, draws_CxB)
  return tables


def write_tables(wd: workdir_lib.Workdir, tables: dict[str, pd.DataFrame], draws_CxB: np.ndarray | None) -> None:
  """Replace the evaluation's tables (process 0): the completion marker is withdrawn first, each table is written
  atomically, and a table this evaluation did not make is removed, so no stale one is rendered."""
  workdir_lib.clear_complete(wd)
  wd.results.mkdir(parents=True, exist_ok=True)
  for name in workdir_lib.EVALUATION_TABLES:
    if name not in tables:
      wd.table(name).unlink(missing_ok=True)
  if draws_CxB is None:
    wd.draws.unlink(missing_ok=True)
  for name, df in tables.items():
    workdir_lib.write_csv(wd.table(name), df)
  if draws_CxB is not None:
    with workdir_lib.atomic_output(wd.draws) as tmp:
      bootstrap_differences.save_draws(tmp, tables["bootstrap"], draws_CxB)
