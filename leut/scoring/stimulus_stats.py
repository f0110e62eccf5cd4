"""Evaluation-side statistics that need RDMs or images, not just the CSVs: noise ceilings and partial RSA.

`leut.evaluate` calls these while it has the brain RDMs, stimuli and features in memory and writes two more tidy
tables, which the report renders when present:

  results/noise_ceiling.csv  roi, pairs, n_subjects, lower, upper, p_lower
      Nili et al. (2014) bounds of the per-subject scheme (`leut.rsa.noise_ceiling`, PROTOCOL §3.5):
      lower = mean_j ρ(RDM_j, mean of the other subjects), upper = mean_j ρ(RDM_j, mean of all subjects).
  results/partial.csv        rule, seed, epoch, step, layer, roi, subject, resolution, arm, pairs, control, rho,
                             rho_partial, rho_partial_textbook
      ρ and partial rank correlation ρ(model, brain | control) for each control RDM alone and for all of them
      jointly (control = 'all'), by two estimators (`leut.rsa.partial`, PROTOCOL §3.10–3.11): rho_partial, the
      published one (Spearman of the RE-RANKED rank residuals, `rsa.partial_compare`), and rho_partial_textbook, the
      textbook partial Spearman correlation (Pearson of the rank residuals, no re-ranking, `rsa.partial_spearman`).

  results/bootstrap.csv      rule, epoch, step, layer, roi, resolution, arm, pairs, n_boot, n_undefined, rho, ci_lo,
                             ci_hi
      stimulus-bootstrap 95% percentile CI of the seed- and subject-mean ρ (PROTOCOL §3.6, A v4 / C v3 scheme:
      resample stimuli, drop self-pairs, average seeds inside each draw); the resample indices come from one fixed
      key, so every condition sees the same draws. A draw in which some seed's or subject's ρ is undefined (fewer than
      two distinct pairs drawn, a model constant on them: `rsa.bootstrap`) is undefined; n_undefined counts those, and
      the CI is taken over the other draws (NaN with fewer than `rsa.min_defined_draws()` = 40 of them).
      `bootstrap_draws` also returns each row's B draws (NaN where undefined), from which
      `leut.scoring.bootstrap_differences` builds the paired differences between conditions.
  results/best_layer_cv.csv  rule, seed, epoch, step, roi, resolution, arm, pairs, n_splits, chosen_layers, cv_layer,
                             cv_score, naive_max, note
      cross-validated best layer (`leut.rsa.cross_validated_best_layer`): per seed, the layer with the highest
      subject-mean ρ on the pairs within a random half of the stimuli, scored on the pairs within the other half, and
      the other way round, over `n_splits` halvings (the same halvings for every rule, epoch and seed).
      chosen_layers lists the 2 × n_splits choices, cv_layer is the most frequent one, cv_score the mean held-out ρ,
      naive_max the all-stimulus max over layers (biased upward, for reference).

Control RDMs are built from the evaluation stimuli themselves at the evaluated resolution and arm, after undoing
the CIFAR normalisation (x·std + mean, clipped to [0, 1]): PIXEL, MEANLUM, MEANRGB, COLORHIST and GABOR
(`leut.rsa.controls`). The published controls were built at 224 px; at 224 px these are the same images.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from leut import rsa
from leut.data.normalization import CIFAR_MEAN, CIFAR_STD
from leut.rsa.controls import gabor_energy
from leut.scoring.layer_choice import modal_layer

CONTROLS = {
  "pixel": rsa.pixel_rdm,
  "luminance": rsa.luminance_rdm,
  "mean_rgb": rsa.mean_rgb_rdm,
  "color_histogram": rsa.color_histogram_rdm,
  "gabor": rsa.gabor_energy_rdm,
}
NOISE_CEILING_COLUMNS = ["roi", "pairs", "n_subjects", "lower", "upper", "p_lower"]
BOOTSTRAP_COLUMNS = [
  "rule",
  "epoch",
  "step",
  "layer",
  "roi",
  "resolution",
  "arm",
  "pairs",
  "n_boot",
  "n_undefined",
  "rho",
  "ci_lo",
  "ci_hi",
]
BEST_LAYER_CV_COLUMNS = [
  "rule",
  "seed",
  "epoch",
  "step",
  "roi",
  "resolution",
  "arm",
  "pairs",
  "n_splits",
  "chosen_layers",
  "cv_layer",
  "cv_score",
  "naive_max",
  "note",
]
BOOTSTRAP_SEED = 20261002  # A v4's resample seed (PROTOCOL §3.6); one key for every condition, so draws are paired
PARTIAL_COLUMNS = [
  "rule",
  "seed",
  "epoch",
  "step",
  "layer",
  "roi",
  "subject",
  "resolution",
  "arm",
  "pairs",
  "control",
  "rho",
  "rho_partial",
  "rho_partial_textbook",
]


def unnormalize(images_SxHxWx3: np.ndarray) -> np.ndarray:
  """CIFAR-normalised float images back to RGB in [0, 1]."""
  x = np.asarray(images_SxHxWx3, np.float32) * np.asarray(CIFAR_STD, np.float32) + np.asarray(CIFAR_MEAN, np.float32)
  return np.clip(x, 0.0, 1.0)


def _gabor_rdm_chunked(raw_SxHxWx3: np.ndarray, chunk: int = 32) -> jax.Array:
  """GABOR control with the energy features computed `chunk` stimuli at a time (720 × 224² × 12 complex filter
  responses would need ~3.5 GB at once); identical to `rsa.gabor_energy_rdm`."""
  feats = [np.asarray(gabor_energy(jnp.asarray(raw_SxHxWx3[i : i + chunk]))) for i in range(0, len(raw_SxHxWx3), chunk)]
  return rsa.rdm(jnp.asarray(np.concatenate(feats)), "correlation")


def control_rdms(images_SxHxWx3: np.ndarray, names=tuple(CONTROLS)) -> dict[str, np.ndarray]:
  """`{name: SxS}` control RDMs of CIFAR-normalised stimuli (see module docstring)."""
  raw = unnormalize(images_SxHxWx3)
  out = {}
  for n in names:
    if n not in CONTROLS:
      raise ValueError(f"unknown control {n!r}; choose from {sorted(CONTROLS)}")
    out[n] = np.asarray(_gabor_rdm_chunked(raw) if n == "gabor" else CONTROLS[n](jnp.asarray(raw)), np.float32)
  return out


def noise_ceiling_table(
  brain, masks: dict[str, np.ndarray], *, method: str = "spearman", n_perm: int = 0, seed: int = 0
) -> pd.DataFrame:
  """Nili lower/upper bounds per ROI and pair set; `brain.rdms_RxJxSxS`, `brain.rois` as in `leut.evaluate`.

  With `n_perm > 0`, p_lower is the relabelling-null p of the lower bound (key = `jax.random.key(seed)`).
  """
  rows = []
  rdms = np.asarray(brain.rdms_RxJxSxS)
  for r, roi in enumerate(brain.rois):
    for pairs, mask in masks.items():
      if rdms.shape[1] < 2:
        continue
      nc = rsa.noise_ceiling(
        jnp.asarray(rdms[r]),
        method,
        pair_mask=jnp.asarray(mask),
        key=jax.random.key(seed) if n_perm else None,
        n_perm=n_perm,
      )
      rows.append(
        dict(
          roi=roi,
          pairs=pairs,
          n_subjects=rdms.shape[1],
          lower=float(nc.lower),
          upper=float(nc.upper),
          p_lower=float(nc.p_lower) if nc.p_lower is not None else np.nan,
        )
      )
  return pd.DataFrame(rows, columns=NOISE_CEILING_COLUMNS)


@jax.jit
def _scores(model_NxP, brain_RxJxP, controls_KxP, mask_P):
  """`(rho, rho_partial, rho_partial_textbook)`, each `NxRxJ`, for one control set (K controls regressed out
  jointly)."""
  m = model_NxP[:, None, None, :]
  b = brain_RxJxP[None]
  return (
    rsa.compare(m, b, "spearman", pair_mask=mask_P, square=False),
    rsa.partial_compare(m, b, controls_KxP, pair_mask=mask_P),
    rsa.partial_spearman(m, b, controls_KxP, pair_mask=mask_P),
  )


def partial_rows(
  *,
  rule: str,
  epoch: int,
  step: int,
  layer: str,
  model_NxP,
  brain,
  controls: dict[str, np.ndarray],
  masks: dict[str, np.ndarray],
  resolution: int,
  arm: str,
  invalid_N=None,
) -> list[dict]:
  """ρ and both partial ρ of every seed's model RDM against every ROI × subject RDM, per control and jointly ('all').

  `model_NxP`: the upper triangles of N seeds' model RDMs (`leut.evaluate.model_rdms`). Per-subject rows only
  (aggregate over subjects as for `rsa.csv`, PROTOCOL §3.3). Seeds flagged in `invalid_N` (constant or non-finite
  features, a diverged network: NaN in `rsa.csv`) get NaN here too.
  """
  model_NxP = jnp.asarray(model_NxP)
  invalid = np.zeros(model_NxP.shape[0], bool) if invalid_N is None else np.asarray(invalid_N, bool)
  brain_RxJxP = rsa.upper_tri(jnp.asarray(brain.rdms_RxJxSxS))
  ctrl = {n: rsa.upper_tri(jnp.asarray(c))[None] for n, c in controls.items()}
  if len(ctrl) > 1:
    ctrl["all"] = jnp.concatenate(list(ctrl.values()))
  N = model_NxP.shape[0]
  rows = []
  for pairs, mask in masks.items():
    mask_P = rsa.upper_tri(jnp.asarray(mask)).astype(jnp.float32)
    for name, c in ctrl.items():
      rho_NxRxJ, part_NxRxJ, text_NxRxJ = (np.array(x, np.float64) for x in _scores(model_NxP, brain_RxJxP, c, mask_P))
      for x in (rho_NxRxJ, part_NxRxJ, text_NxRxJ):
        x[invalid] = np.nan
      for seed in range(N):
        for r, roi in enumerate(brain.rois):
          for j, subj in enumerate(brain.subjects):
            rows.append(
              dict(
                rule=rule,
                seed=seed,
                epoch=epoch,
                step=step,
                layer=layer,
                roi=roi,
                subject=subj,
                resolution=resolution,
                arm=arm,
                pairs=pairs,
                control=name,
                rho=float(rho_NxRxJ[seed, r, j]),
                rho_partial=float(part_NxRxJ[seed, r, j]),
                rho_partial_textbook=float(text_NxRxJ[seed, r, j]),
              )
            )
  return rows


def bootstrap_draws(
  *,
  rule: str,
  epoch: int,
  step: int,
  layer: str,
  model_NxSxS,
  brain,
  masks: dict[str, np.ndarray],
  resolution: int,
  arm: str,
  n_boot: int = 1000,
  seed: int = BOOTSTRAP_SEED,
  rois=None,
  valid_N=None,
  seed_draws: list | None = None,
) -> tuple[list[dict], list[np.ndarray]]:
  """Stimulus-bootstrap CI of the seed- and subject-mean ρ of one layer against each ROI (see module docstring).

  `model_NxSxS`: N seeds' model RDMs (`leut.evaluate.model_rdms`). Returns `(rows, draws)`: one
  `BOOTSTRAP_COLUMNS` row per ROI and pair set, and for each row the `B` float64 draws θ*_b = mean over seeds n and
  subjects j of ρ_{n,j}(resample b), NaN when any of those ρ is undefined in that resample (n_undefined counts them;
  the CI uses the others, `rsa.percentile_ci`). The resample indices depend only on `seed` and the stimulus count, so
  draws of different rules, epochs, layers and ROIs are paired draw by draw. `rois` restricts the ROIs (e.g. to those
  whose headline layer this is: bootstrap cost ~ n_boot × P per RDM);
  `valid_N` drops seeds (constant or non-finite features, diverged networks) from the seed average.
  `seed_draws`, when given, receives for each row `(observed_N, draws_NxB)`: every seed's subject-mean ρ on all
  stimuli and in each resample (NaN rows for the seeds `valid_N` drops), for `two_level_bootstrap`.
  """
  model_NxSxS = jnp.asarray(model_NxSxS)
  keep_N = np.ones(model_NxSxS.shape[0], bool) if valid_N is None else np.asarray(valid_N, bool)
  if valid_N is not None:
    model_NxSxS = model_NxSxS[keep_N]
  S = model_NxSxS.shape[-1]
  indices_BxS = rsa.resample_indices(jax.random.key(seed), n_boot, S)
  rows, draws = [], []
  for r, roi in enumerate(brain.rois):
    if rois is not None and roi not in rois:
      continue
    for pairs, mask in masks.items():
      res = rsa.bootstrap(
        model_NxSxS,
        jnp.asarray(brain.rdms_RxJxSxS[r]),
        indices_BxS=indices_BxS,
        pair_mask=None if np.all(mask) else jnp.asarray(mask),
      )
      draws_B = np.asarray(res.scores, np.float64).mean(axis=(0, 1))
      with jax.enable_x64(True):  # quantiles in float64, as NumPy would compute them
        lo, hi = (float(x) for x in rsa.percentile_ci(draws_B, 0.95))
      rows.append(
        dict(
          rule=rule,
          epoch=epoch,
          step=step,
          layer=layer,
          roi=roi,
          resolution=resolution,
          arm=arm,
          pairs=pairs,
          n_boot=n_boot,
          n_undefined=int(n_boot - int(rsa.n_defined(draws_B))),
          rho=float(np.asarray(res.observed, np.float64).mean()),
          ci_lo=lo,
          ci_hi=hi,
        )
      )
      draws.append(draws_B)
      if seed_draws is not None:
        observed_N = np.full(len(keep_N), np.nan)
        per_seed_NxB = np.full((len(keep_N), n_boot), np.nan)
        observed_N[keep_N] = np.asarray(res.observed, np.float64).mean(axis=-1)
        per_seed_NxB[keep_N] = np.asarray(res.scores, np.float64).mean(axis=1)
        seed_draws.append((observed_N, per_seed_NxB))
  return rows, draws


def feature_flags(feats_NxSxU) -> tuple[np.ndarray, np.ndarray]:
  """`(constant_N, non_finite_N)`: seeds with a constant feature row for some stimulus, and with a NaN/inf feature."""
  f = jnp.asarray(feats_NxSxU)
  return np.asarray(rsa.constant_rows(f)).any(1), np.asarray(rsa.non_finite_rows(f)).any(1)


def bootstrap_rows(**kwargs) -> list[dict]:
  """The rows of `bootstrap_draws(**kwargs)` without the draws."""
  return bootstrap_draws(**kwargs)[0]


@partial(jax.jit, static_argnames=("n_splits", "method"))
def _cv_best_layer(models_NxLxP, brain_RxJxP, mask_P, key, *, n_splits, method):
  """`rsa.cross_validated_best_layer` for every ROI (same halvings for all): fields `RxN`, `RxNxKx2`."""
  return jax.vmap(
    lambda b_JxP: rsa.cross_validated_best_layer(
      models_NxLxP, b_JxP, key=key, n_splits=n_splits, method=method, pair_mask=mask_P
    )
  )(brain_RxJxP)


def best_layer_rows(
  *,
  rule: str,
  epoch: int,
  step: int,
  rdms: dict,
  brain,
  masks: dict[str, np.ndarray],
  resolution: int,
  arm: str,
  flags: dict | None = None,
  method: str = "spearman",
  n_splits: int = 10,
  seed: int = 0,
  seed_chunk: int = 8,
  invalid_N=None,
) -> list[dict]:
  """Cross-validated best layer per seed and ROI (`BEST_LAYER_CV_COLUMNS`; see module docstring).

  `rdms` maps every layer to the upper triangles `NxP` of its N seeds' model RDMs (`leut.evaluate.model_rdms`), and
  `flags` each layer to `(constant_N, non_finite_N)`, the seeds whose features in that layer are constant for some
  stimulus or hold NaN/inf (`feature_flags`). For a halving (A, B) of the stimuli and per seed,
  l_A = argmax_l mean_j ρ_{l,j}(pairs within A) and the held-out score is mean_j ρ_{l_A,j}(pairs within B), and the
  other way round; cv_score averages the 2 × n_splits held-out scores (Kriegeskorte et al. 2009, selection on
  independent data). The halvings come from `jax.random.key(seed)`, so every rule and epoch is split alike. A seed
  with constant features in any layer (NaN in `rsa.csv`, see `leut.evaluate`) gets NaN scores and a note, and so
  does one with non-finite features in any layer or flagged in `invalid_N` (a diverged network). Seeds are scored
  `seed_chunk` at a time (memory ~ 7 × seed_chunk × layers × P floats; the result does not depend on it).
  """
  layers = list(rdms)
  n_seeds = np.shape(rdms[layers[0]])[0]
  constant_N = np.zeros(n_seeds, bool)
  non_finite_N = np.zeros(n_seeds, bool) if invalid_N is None else np.asarray(invalid_N, bool).copy()
  for layer in layers:
    if flags is not None and layer in flags:
      constant_N |= np.asarray(flags[layer][0], bool)
      non_finite_N |= np.asarray(flags[layer][1], bool)
  invalid_N = constant_N | non_finite_N
  notes = np.where(non_finite_N, "non_finite_features", np.where(constant_N, "constant features in some layer", ""))
  models_NxLxP = jnp.stack([jnp.asarray(rdms[layer]) for layer in layers], axis=1)
  brain_RxJxP = rsa.upper_tri(jnp.asarray(brain.rdms_RxJxSxS))
  key = jax.random.key(seed)
  rows = []
  for pairs, mask in masks.items():
    mask_P = rsa.upper_tri(jnp.asarray(mask))
    parts = [
      jax.device_get(
        _cv_best_layer(models_NxLxP[n0 : n0 + seed_chunk], brain_RxJxP, mask_P, key, n_splits=n_splits, method=method)
      )
      for n0 in range(0, models_NxLxP.shape[0], seed_chunk)
    ]
    res = jax.tree.map(lambda *x: np.concatenate(x, axis=1), *parts)  # fields R x N x ...
    for r, roi in enumerate(brain.rois):
      for seed_n in range(models_NxLxP.shape[0]):
        chosen = [layers[i] for i in np.asarray(res.chosen[r, seed_n]).reshape(-1)]
        bad = bool(invalid_N[seed_n])
        rows.append(
          dict(
            rule=rule,
            seed=seed_n,
            epoch=epoch,
            step=step,
            roi=roi,
            resolution=resolution,
            arm=arm,
            pairs=pairs,
            n_splits=n_splits,
            chosen_layers="" if bad else ";".join(chosen),
            cv_layer="" if bad else modal_layer(chosen, layers),
            cv_score=np.nan if bad else float(res.score[r, seed_n]),
            naive_max=np.nan if bad else float(res.naive_max[r, seed_n]),
            note=str(notes[seed_n]),
          )
        )
  return rows
