"""Evaluation-side statistics that need RDMs or images, not just the CSVs: noise ceilings and partial RSA.

`leut.evaluate` calls these while it has the brain RDMs, stimuli and features in memory and writes two more tidy
tables, which the report renders when present:

  results/noise_ceiling.csv  roi, pairs, n_subjects, lower, upper, p_lower
      Nili et al. (2014) bounds of the per-subject scheme (`leut.rsa.noise_ceiling`, PROTOCOL §3.5):
      lower = mean_j ρ(RDM_j, mean of the other subjects), upper = mean_j ρ(RDM_j, mean of all subjects).
  results/partial.csv        rule, seed, epoch, step, layer, roi, subject, resolution, arm, pairs, control, rho,
                             rho_partial
      ρ and partial Spearman ρ(model, brain | control) (`leut.rsa.partial_compare`, PROTOCOL §3.10–3.11) for each
      control RDM alone and for all of them jointly (control = 'all').

  results/bootstrap.csv      rule, epoch, step, layer, roi, resolution, arm, pairs, n_boot, rho, ci_lo, ci_hi
      stimulus-bootstrap 95% percentile CI of the seed- and subject-mean ρ (PROTOCOL §3.6, A v4 / C v3 scheme:
      resample stimuli, drop self-pairs, average seeds inside each draw); the resample indices come from one fixed
      key, so every condition sees the same draws.

Control RDMs are built from the evaluation stimuli themselves at the evaluated resolution and arm, after undoing
the CIFAR normalisation (x·std + mean, clipped to [0, 1]): PIXEL, MEANLUM, MEANRGB, COLORHIST and GABOR
(`leut.rsa.controls`). The published controls were built at 224 px; at 224 px these are the same images.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from leut import rsa
from leut.data.normalization import CIFAR_MEAN, CIFAR_STD
from leut.rsa.controls import gabor_energy

CONTROLS = {"pixel": rsa.pixel_rdm, "luminance": rsa.luminance_rdm, "mean_rgb": rsa.mean_rgb_rdm,
            "color_histogram": rsa.color_histogram_rdm, "gabor": rsa.gabor_energy_rdm}
NOISE_CEILING_COLUMNS = ["roi", "pairs", "n_subjects", "lower", "upper", "p_lower"]
BOOTSTRAP_COLUMNS = ["rule", "epoch", "step", "layer", "roi", "resolution", "arm", "pairs", "n_boot", "rho", "ci_lo",
                     "ci_hi"]
PARTIAL_COLUMNS = ["rule", "seed", "epoch", "step", "layer", "roi", "subject", "resolution", "arm", "pairs", "control",
                   "rho", "rho_partial"]


def unnormalize(images_SxHxWx3: np.ndarray) -> np.ndarray:
  """CIFAR-normalised float images back to RGB in [0, 1]."""
  x = np.asarray(images_SxHxWx3, np.float32) * np.asarray(CIFAR_STD, np.float32) + np.asarray(CIFAR_MEAN, np.float32)
  return np.clip(x, 0.0, 1.0)


def _gabor_rdm_chunked(raw_SxHxWx3: np.ndarray, chunk: int = 32) -> jax.Array:
  """GABOR control with the energy features computed `chunk` stimuli at a time (720 × 224² × 12 complex filter
  responses would need ~3.5 GB at once); identical to `rsa.gabor_energy_rdm`."""
  feats = [np.asarray(gabor_energy(jnp.asarray(raw_SxHxWx3[i:i + chunk]))) for i in range(0, len(raw_SxHxWx3), chunk)]
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


def noise_ceiling_table(brain, masks: dict[str, np.ndarray], *, method: str = "spearman", n_perm: int = 0,
                        seed: int = 0) -> pd.DataFrame:
  """Nili lower/upper bounds per ROI and pair set; `brain.rdms_RxJxSxS`, `brain.rois` as in `leut.evaluate`.

  With `n_perm > 0`, p_lower is the relabelling-null p of the lower bound (key = `jax.random.key(seed)`).
  """
  rows = []
  rdms = np.asarray(brain.rdms_RxJxSxS)
  for r, roi in enumerate(brain.rois):
    for pairs, mask in masks.items():
      if rdms.shape[1] < 2:
        continue
      nc = rsa.noise_ceiling(jnp.asarray(rdms[r]), method, pair_mask=jnp.asarray(mask),
                             key=jax.random.key(seed) if n_perm else None, n_perm=n_perm)
      rows.append(dict(roi=roi, pairs=pairs, n_subjects=rdms.shape[1], lower=float(nc.lower), upper=float(nc.upper),
                       p_lower=float(nc.p_lower) if nc.p_lower is not None else np.nan))
  return pd.DataFrame(rows, columns=NOISE_CEILING_COLUMNS)


@jax.jit
def _scores(model_NxP, brain_RxJxP, controls_KxP, mask_P):
  """`(rho_NxRxJ, rho_partial_NxRxJ)` for one control set (K controls regressed out jointly)."""
  m = model_NxP[:, None, None, :]
  b = brain_RxJxP[None]
  return (rsa.compare(m, b, "spearman", pair_mask=mask_P, square=False),
          rsa.partial_compare(m, b, controls_KxP, pair_mask=mask_P))


def partial_rows(*, rule: str, epoch: int, step: int, layer: str, feats_NxSxU, brain, controls: dict[str, np.ndarray],
                 masks: dict[str, np.ndarray], resolution: int, arm: str, metric: str = "correlation",
                 invalid_N=None) -> list[dict]:
  """ρ and partial ρ of every seed's model RDM against every ROI × subject RDM, per control and jointly ('all').

  Per-subject rows only (aggregate over subjects as for `rsa.csv`, PROTOCOL §3.3). Seeds flagged in `invalid_N`
  (e.g. constant features, reported as NaN in `rsa.csv`) get NaN here too.
  """
  invalid = np.zeros(np.shape(feats_NxSxU)[0], bool) if invalid_N is None else np.asarray(invalid_N, bool)
  model_NxP = rsa.upper_tri(rsa.rdm(jnp.asarray(feats_NxSxU), metric=metric))
  brain_RxJxP = rsa.upper_tri(jnp.asarray(brain.rdms_RxJxSxS))
  ctrl = {n: rsa.upper_tri(jnp.asarray(c))[None] for n, c in controls.items()}
  if len(ctrl) > 1:
    ctrl["all"] = jnp.concatenate(list(ctrl.values()))
  N = model_NxP.shape[0]
  rows = []
  for pairs, mask in masks.items():
    mask_P = rsa.upper_tri(jnp.asarray(mask)).astype(jnp.float32)
    for name, c in ctrl.items():
      rho_NxRxJ, part_NxRxJ = (np.array(x, np.float64) for x in _scores(model_NxP, brain_RxJxP, c, mask_P))
      rho_NxRxJ[invalid] = np.nan
      part_NxRxJ[invalid] = np.nan
      for seed in range(N):
        for r, roi in enumerate(brain.rois):
          for j, subj in enumerate(brain.subjects):
            rows.append(dict(rule=rule, seed=seed, epoch=epoch, step=step, layer=layer, roi=roi, subject=subj,
                             resolution=resolution, arm=arm, pairs=pairs, control=name,
                             rho=float(rho_NxRxJ[seed, r, j]), rho_partial=float(part_NxRxJ[seed, r, j])))
  return rows


def bootstrap_rows(*, rule: str, epoch: int, step: int, layer: str, feats_NxSxU, brain, masks: dict[str, np.ndarray],
                   resolution: int, arm: str, metric: str = "correlation", n_boot: int = 1000, seed: int = 20261002,
                   rois=None, valid_N=None) -> list[dict]:
  """Stimulus-bootstrap CI of the seed- and subject-mean ρ of one layer against each ROI (see module docstring).

  `rois` restricts the ROIs (e.g. to those whose headline layer this is: bootstrap cost ~ n_boot × P per RDM);
  `valid_N` drops seeds (constant features) from the seed average.
  """
  model_NxSxS = rsa.rdm(jnp.asarray(feats_NxSxU), metric=metric)
  if valid_N is not None:
    model_NxSxS = model_NxSxS[np.asarray(valid_N, bool)]
  S = model_NxSxS.shape[-1]
  indices_BxS = rsa.resample_indices(jax.random.key(seed), n_boot, S)
  rows = []
  for r, roi in enumerate(brain.rois):
    if rois is not None and roi not in rois:
      continue
    for pairs, mask in masks.items():
      res = rsa.bootstrap(model_NxSxS, jnp.asarray(brain.rdms_RxJxSxS[r]), indices_BxS=indices_BxS,
                          pair_mask=None if np.all(mask) else jnp.asarray(mask))
      draws_B = np.asarray(res.scores).mean(axis=(0, 1))
      lo, hi = np.quantile(draws_B, [0.025, 0.975])
      rows.append(dict(rule=rule, epoch=epoch, step=step, layer=layer, roi=roi, resolution=resolution, arm=arm,
                       pairs=pairs, n_boot=n_boot, rho=float(np.asarray(res.observed).mean()), ci_lo=float(lo),
                       ci_hi=float(hi)))
  return rows
