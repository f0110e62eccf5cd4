"""`leut score-features`: leut's statistics for features computed elsewhere (PyTorch, thingsvision, ...).

    leut score-features FEATURES --workdir DIR [--name NAME] [--config.data.*=...]

FEATURES is an `.npz` or `.h5` file holding one array per layer (stimuli × units; any further axes are flattened)
and a `stimuli` array naming each row by the brain data's stimulus names (`BrainData.stimuli`), in any order. The
rows are put in the brain data's order; a name the brain data lacks, a stimulus of the brain data the file lacks, or
a name listed twice stops the command with one `StimulusMismatchError` listing them.

The features are scored against the configured brain data like one seed of one checkpoint of a trained rule
(`leut.evaluate`): each layer's RDM is built once (`evaluate.model_rdms`) and gives the rsa.csv rows (every ROI,
subject, the subject-mean RDM and every pair set), partial RSA against the control RDMs of the stimuli at the
largest configured resolution (when stimulus images are configured), the stimulus bootstrap of every layer and ROI,
and the cross-validated best layer; noise ceilings are the brain data's. The metrics `eval.metrics` adds (CKA,
encoding; `leut.scoring.metrics`) score the same features against the brain responses into cka.csv and encoding.csv.
Rows carry rule = NAME, seed 0, epoch 0, step 0, resolution 0, arm 'external' and readout 'as_given' (the features'
own input size is unknown to leut), and replace any earlier rows of NAME in the workdir's tables; `leut evaluate`
rewrites the tables from the checkpoints and drops them.

The workdir's config (config.json, with `--config.data.*` and `--config.eval.*` overrides) says which brain data
and statistics; a folder without config.json uses `leut.defaults.protocol_config()` with the overrides.
"""

from __future__ import annotations

from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pandas as pd

from leut import config as config_lib
from leut import evaluate as evaluate_lib
from leut import rsa
from leut import workdir as workdir_lib
from leut.errors import StimulusMismatchError
from leut.scoring import bootstrap_differences, cka_scores, encoding_scores, stimulus_stats
from leut.scoring import metrics as metrics_lib

EXTERNAL_ARM = "external"
EXTERNAL_RESOLUTION = 0
EXTERNAL_READOUT = "as_given"
STIMULI_KEY = "stimuli"


def load_features(path: str | Path) -> tuple[list[str], dict[str, np.ndarray]]:
  """`(stimuli, {layer: SxU float32})` from an `.npz` or `.h5` file (see module docstring)."""
  path = Path(path)
  if path.suffix == ".npz":
    with np.load(path, allow_pickle=False) as z:
      arrays = {k: np.asarray(z[k]) for k in z.files}
  elif path.suffix in (".h5", ".hdf5"):
    import h5py

    with h5py.File(path, "r") as f:
      arrays = {k: np.asarray(f[k][()]) for k in f.keys()}
  else:
    raise StimulusMismatchError(f"{path}: features must be an .npz or .h5 file, not {path.suffix or 'no suffix'!r}")
  if STIMULI_KEY not in arrays:
    raise StimulusMismatchError(f"{path} has no {STIMULI_KEY!r} array naming each row by its stimulus")
  names = [s.decode() if isinstance(s, bytes) else str(s) for s in arrays.pop(STIMULI_KEY).reshape(-1)]
  if not arrays:
    raise StimulusMismatchError(f"{path} holds no layer array besides {STIMULI_KEY!r}")
  feats = {}
  for layer, x in arrays.items():
    if x.ndim < 2 or x.shape[0] != len(names):
      raise StimulusMismatchError(
        f"{path}: layer {layer!r} has shape {x.shape}, but {len(names)} stimuli are named (rows must be stimuli)"
      )
    feats[layer] = x.reshape(x.shape[0], -1).astype(np.float32)
  return names, feats


def brain_order(names: list[str], brain_stimuli, path) -> np.ndarray:
  """Row indices putting the file's rows in the brain data's stimulus order; `StimulusMismatchError` listing every
  duplicated, unknown and missing name otherwise."""
  brain_stimuli = list(brain_stimuli)
  seen, duplicated = {}, []
  for i, n in enumerate(names):
    if n in seen:
      duplicated.append(n)
    seen[n] = i
  unknown = [n for n in seen if n not in set(brain_stimuli)]
  missing = [n for n in brain_stimuli if n not in seen]
  if duplicated or unknown or missing:
    parts = []
    for what, items in (("listed twice", duplicated), ("not stimuli of the brain data", unknown)):
      if items:
        parts.append(f"{len(items)} {what}: {', '.join(map(repr, sorted(set(items))))}")
    if missing:
      parts.append(f"{len(missing)} brain-data stimuli missing: {', '.join(map(repr, missing))}")
    raise StimulusMismatchError(
      f"{path}: its {STIMULI_KEY!r} must name each of the brain data's {len(brain_stimuli)} stimuli once; "
      + "; ".join(parts)
    )
  return np.array([seen[n] for n in brain_stimuli])


def score_tables(
  config, brain, feats: dict[str, np.ndarray], name: str, stimuli_images=None, responses=None
) -> tuple[dict, np.ndarray | None]:
  """The evaluation tables (`leut.evaluate` columns) of one external model whose `feats` follow `brain.stimuli`.

  `stimuli_images`: the stimuli (CIFAR-normalised, S x px x px x 3) for the partial-RSA control RDMs, or None.
  `responses`: the brain responses aligned to `brain.stimuli` (`experiment.load_brain_and_responses`), needed when
  `eval.metrics` names CKA or encoding.
  """
  masks = evaluate_lib.pair_masks(brain, list(config.eval.pairs))
  targets = evaluate_lib.brain_targets_for(brain, masks, config.eval.method)
  names = tuple(config.eval.partial_controls)
  controls = stimulus_stats.control_rdms(stimuli_images, names) if names and stimuli_images is not None else None
  key = dict(rule=name, epoch=0, step=0)
  where = dict(key, brain=brain, masks=masks, resolution=EXTERNAL_RESOLUTION, arm=EXTERNAL_ARM)
  rsa_rows, partial_rows, boot_rows, boot_draws, layer_rdms, flags = [], [], [], [], {}, {}
  for layer, f_SxU in feats.items():
    f_1xSxU = jnp.asarray(f_SxU)[None]
    constant_N, non_finite_N = stimulus_stats.feature_flags(f_1xSxU)
    model_1xSxS = evaluate_lib.model_rdms(f_1xSxU, config.eval.metric)  # the one RDM of this layer
    model_1xP = rsa.upper_tri(model_1xSxS)
    layer_rdms[layer], flags[layer] = model_1xP, (constant_N, non_finite_N)
    invalid_N = constant_N | non_finite_N
    for pairs in masks:
      per_subj, mean_rdm = (
        np.asarray(x) for x in evaluate_lib.score_rdms(model_1xP, targets[pairs], method=config.eval.method)
      )
      note = "non_finite_features" if non_finite_N[0] else ("constant features" if constant_N[0] else "")
      if not note and np.isnan(per_subj).all():
        note = evaluate_lib.CONSTANT_RDM
      invalid_N = invalid_N | bool(note)
      place = dict(layer=layer, resolution=EXTERNAL_RESOLUTION, arm=EXTERNAL_ARM, pairs=pairs)
      rsa_rows += evaluate_lib.rsa_table_rows(per_subj, mean_rdm, [note], brain, **key, **place)
    if controls:
      partial_rows += stimulus_stats.partial_rows(
        **where, layer=layer, model_NxP=model_1xP, controls=controls, invalid_N=invalid_N
      )
    if config.eval.n_boot and not invalid_N.any():
      rows, draws = stimulus_stats.bootstrap_draws(
        **where, layer=layer, model_NxSxS=model_1xSxS, n_boot=config.eval.n_boot, valid_N=~invalid_N
      )
      boot_rows += rows
      boot_draws += draws
  tables = {"rsa": pd.DataFrame(rsa_rows)}
  if partial_rows:
    tables["partial"] = pd.DataFrame(partial_rows)
  if boot_rows:
    tables["bootstrap"] = pd.DataFrame(boot_rows)
  n_splits = config.eval.get("best_layer_splits", 0)
  if n_splits and len(feats) > 1:
    tables["best_layer_cv"] = pd.DataFrame(
      stimulus_stats.best_layer_rows(
        **key,
        rdms=layer_rdms,
        flags=flags,
        brain=brain,
        masks=masks,
        resolution=EXTERNAL_RESOLUTION,
        arm=EXTERNAL_ARM,
        method=config.eval.method,
        n_splits=n_splits,
        seed=config.seed,
      )
    )
  tables.update(
    _response_tables(config, feats, responses, where=dict(key, resolution=EXTERNAL_RESOLUTION, arm=EXTERNAL_ARM))
  )
  for df in tables.values():
    df["readout"] = EXTERNAL_READOUT  # the features arrive read out already
  tables["noise_ceiling"] = stimulus_stats.noise_ceiling_table(brain, masks, method=config.eval.method)
  return tables, (np.stack(boot_draws) if boot_draws else None)


def _response_tables(config, feats: dict[str, np.ndarray], responses, *, where: dict) -> dict[str, pd.DataFrame]:
  """cka.csv and encoding.csv rows of the external features, as `leut.evaluate` scores a checkpoint's."""
  chosen = metrics_lib.response_metrics(config)
  if not chosen:
    return {}
  if responses is None:
    raise ValueError(f"eval.metrics {chosen} need the brain responses; none were loaded")
  feats_1xSxU = {layer: f[None] for layer, f in feats.items()}
  invalid_N = np.zeros(1, bool)  # no network whose weights could have diverged: only the features decide
  out = {}
  if "cka" in chosen:
    out["cka"] = pd.DataFrame(cka_scores.cka_rows(feats_1xSxU, responses, invalid_N=invalid_N, **where))
  if "encoding" in chosen:
    out["encoding"] = pd.DataFrame(
      encoding_scores.encoding_rows(feats_1xSxU, responses, invalid_N=invalid_N, seed=config.seed, **where)
    )
  return out


def merge_into_workdir(wd: workdir_lib.Workdir, name: str, tables: dict, draws_CxB, rules) -> dict:
  """Replace NAME's rows in the workdir's tables by `tables` (noise_ceiling.csv is replaced whole), rebuild the
  bootstrap differences and, if the workdir held a completed evaluation, its completion marker."""
  complete = wd.complete.exists()
  merged = {}
  for table, new in tables.items():
    path = wd.table(table)
    if table != "noise_ceiling" and path.exists():
      old = pd.read_csv(path)
      new = pd.concat([old[old.rule != name], new], ignore_index=True)
    merged[table] = new
  old_draws = None
  if "bootstrap" in tables and wd.draws.exists() and wd.table("bootstrap").exists():
    old_keys, old_draws_CxB = bootstrap_differences.load_draws(wd.draws)
    keep = (old_keys.rule != name).to_numpy()
    old_draws = old_draws_CxB[keep]
  if draws_CxB is not None:
    all_draws = draws_CxB if old_draws is None else np.concatenate([old_draws, draws_CxB])
    merged["bootstrap_differences"] = bootstrap_differences.difference_table(
      merged["bootstrap"], all_draws, rules=[*rules, name]
    )
  wd.results.mkdir(parents=True, exist_ok=True)
  for table, df in merged.items():
    workdir_lib.write_csv(wd.table(table), df)
  if draws_CxB is not None:
    with workdir_lib.atomic_output(wd.draws) as tmp:
      bootstrap_differences.save_draws(tmp, merged["bootstrap"], all_draws)
  if complete:
    saved, _ = workdir_lib.read_config(wd)
    workdir_lib.write_complete(wd, config_lib.evaluation_hash(saved))
  return merged


def score_features(config, workdir, features: str | Path, name: str, *, progress: bool = True) -> dict:
  """Score FEATURES against the configured brain data and write its rows into the workdir's tables."""
  from leut import experiment
  from leut.data import things_images

  wd = workdir_lib.Workdir(workdir)
  wd.root.mkdir(parents=True, exist_ok=True)
  with workdir_lib.locked(wd, f"leut score-features {features}"):
    paths = experiment.resolve_data(config, brain_only=True)
    brain, responses = experiment.load_brain_and_responses(config, paths, progress=progress)
    names, feats = load_features(features)
    order = brain_order(names, brain.stimuli, features)
    feats = {layer: f[order] for layer, f in feats.items()}
    images = None
    if config.eval.partial_controls and paths.things_images_dir is not None:
      px = max(int(p) for p in config.eval.resolutions)
      images = things_images.load_stimulus_images(paths.things_images_dir, brain.stimuli, px=px)
    tables, draws_CxB = score_tables(config, brain, feats, name, images, responses)
    rules = list(config.rules) if wd.config.exists() else []
    return merge_into_workdir(wd, name, tables, draws_CxB, rules)
