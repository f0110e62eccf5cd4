"""results/encoding.csv: cross-validated ridge encoding of each ROI's and subject's responses from a layer's features.

For each seed, every neuroid (neuron, site or voxel) is predicted from the layer's features by ridge regression with
its penalty chosen inside the training stimuli (`leut.encoding.encoding_scores`: exact leave-one-out, one SVD per
fold, vmapped over folds and penalties) and scored by the held-out Pearson r, averaged over folds. Folds: the
dataset's fixed train/test split where the scored stimuli include both (TVSD's test images), else `N_FOLDS` folds over
the stimuli in a permuted order (key `jax.random.key(config.seed)`). Each ROI's and subject's score is the median over
its reliable neuroids of r / ceiling (`leut.encoding.ceiling_normalise`: ceiling = the neuroid's reliability in
correlation units, kept above `MIN_CEILING`).

Features are divided, per seed, by their root mean squared centred norm over stimuli (so trace(Xc'Xc) = S): one
scalar per seed, which makes the penalty grid `LAMBDAS` mean the same for every layer and seed.

One row per rule, seed, epoch, layer, ROI, subject, resolution and arm: `score` (median normalised r), `r_raw`
(median raw r over the same neuroids), `n_targets` (neuroids above the ceiling threshold), `n_defined` (those with a
defined r), `n_folds`, `note` (non-empty where `score` is NaN).
"""

from __future__ import annotations

import jax
import numpy as np

from leut import encoding
from leut.data.responses import ResponseData
from leut.scoring import metrics

N_FOLDS = 5
LAMBDAS = 10.0 ** np.arange(-3.0, 3.5, 0.5)  # on features scaled to trace(Xc'Xc) = S
TARGET_CHUNK = 4096  # neuroids fitted at a time (zero-padded to this width: one compile; bounds memory at K x S x T)
MIN_CEILING = 0.3  # Brain-Score's reliability threshold (TVSD electrodes; a 30 % THINGS-fMRI voxel ceiling ~ 0.55)


def held_out_folds(resp: ResponseData, seed: int) -> np.ndarray:
  """Held-out stimuli of each fold, bool (K, S): the dataset's fixed split when the stimuli hold train and test
  ones, else min(`N_FOLDS`, S) folds over a permutation of the stimuli (`encoding.kfold_test_masks`)."""
  split = resp.split_S
  if split is not None and (np.asarray(split) == "test").any() and (np.asarray(split) != "test").any():
    return encoding.split_test_mask(split)
  n = len(resp.stimuli)
  return encoding.kfold_test_masks(n, min(N_FOLDS, n), key=jax.random.key(seed))


def scaled_features(feats_NxSxU: np.ndarray) -> np.ndarray:
  """Each seed's features divided by sqrt(mean_s ||x_s - mean||^2) (1 where that is 0 or not finite)."""
  f = np.asarray(feats_NxSxU, np.float64)
  c = f - f.mean(axis=1, keepdims=True)
  scale_N = np.sqrt((c * c).sum(axis=(1, 2)) / f.shape[1])
  scale_N = np.where(np.isfinite(scale_N) & (scale_N > 0), scale_N, 1.0)
  return (f / scale_N[:, None, None]).astype(np.float32)


def held_out(feats_NxSxU, targets_SxT, test_KxS, keep_pred_T=None) -> tuple[np.ndarray, np.ndarray | None]:
  """`(r_NxT, pred_NxSxT')`: the held-out r per seed and target, mean over folds (`encoding.encoding_scores`), and
  the held-out predictions of the targets in `keep_pred_T` (None: none kept), for the stimulus bootstrap
  (`metric_bootstrap`). `TARGET_CHUNK` targets at a time; each target's fit is its own, so chunking changes nothing
  but memory (a zero-padded column scores NaN and is cut)."""
  n_targets = targets_SxT.shape[1]
  width = min(n_targets, TARGET_CHUNK)
  parts, preds = [], []
  for start in range(0, n_targets, width):
    chunk = targets_SxT[:, start : start + width]
    pad = width - chunk.shape[1]
    if pad:
      chunk = np.concatenate([chunk, np.zeros((chunk.shape[0], pad), chunk.dtype)], axis=1)
    scores = encoding.encoding_scores(feats_NxSxU, chunk, test_KxS, LAMBDAS, seed_batch=1, lambda_batch=4)
    parts.append(np.asarray(scores.r_NxT)[:, : width - pad])
    if keep_pred_T is not None:
      kept = np.asarray(keep_pred_T, bool)[start : start + width]
      preds.append(np.asarray(scores.pred_NxSxT)[:, :, : width - pad][:, :, kept])
  return np.concatenate(parts, axis=1), (np.concatenate(preds, axis=2) if keep_pred_T is not None else None)


def encoding_rows(
  feats: dict, resp: ResponseData, *, invalid_N, seed: int, bootstrap=None, headline=None, **where
) -> list[dict]:
  """Rows of results/encoding.csv for one checkpoint, resolution and arm.

  Args:
    feats: layer -> features `NxSxU` of N seeds, rows in the order of `resp.stimuli` (the RSA path's features).
    resp: the brain responses, aligned to the features (`metrics.aligned_responses`).
    invalid_N: seeds scored NaN whatever their features (a diverged network).
    seed: the config's seed (the fold permutation's key).
    bootstrap: a `metric_bootstrap.MetricBootstrap` that also receives the held-out predictions of each ROI's
      reliable neuroids at its `headline` layer (ROI -> layer), for the stimulus bootstrap; None: no bootstrap.
    where: rule, epoch, step, resolution, arm: copied into every row.
  """
  test_KxS = held_out_folds(resp, seed)
  targets_SxT = np.asarray(resp.responses_SxN, np.float32)
  reliability_T = resp.neuroids["reliability"].to_numpy(np.float64)
  groups = [(roi, sub, resp.mask(roi, sub)) for roi in resp.rois for sub in resp.subjects]
  groups = [(roi, sub, m) for roi, sub, m in groups if m.any()]
  rows = []
  for layer, f_NxSxU in feats.items():
    notes = metrics.seed_notes(f_NxSxU, invalid_N)
    x = scaled_features(np.where(np.isfinite(f_NxSxU), f_NxSxU, 0.0))  # non-finite seeds are noted NaN below
    boot_rois = [r for r in resp.rois if headline and headline.get(r) == layer] if bootstrap is not None else []
    keep_T = np.isin(resp.neuroids["roi"].to_numpy(), boot_rois) & (reliability_T > MIN_CEILING)
    r_NxT, pred_NxSxT = held_out(x, targets_SxT, test_KxS, keep_T if keep_T.any() else None)
    if pred_NxSxT is not None:
      bad_N = np.array([bool(n) for n in notes]) | np.asarray(invalid_N, bool)
      bootstrap.add_encoding(
        layer=layer,
        rois=boot_rois,
        pred_NxSxT=pred_NxSxT,
        targets_SxT=targets_SxT[:, keep_T],
        reliability_T=reliability_T[keep_T],
        groups=[(roi, sub, m[keep_T]) for roi, sub, m in groups if (m & keep_T).any()],
        test_KxS=test_KxS,
        invalid_N=bad_N,
        min_ceiling=MIN_CEILING,
        **where,
      )
    for roi, sub, m in groups:
      ceiled = encoding.ceiling_normalise(r_NxT[:, m], reliability_T[m], min_ceiling=MIN_CEILING)
      score_N, raw_N = np.asarray(ceiled.summary_N, np.float64), np.asarray(ceiled.raw_summary_N, np.float64)
      n_kept = int(np.asarray(ceiled.kept_T).sum())
      for s in range(len(score_N)):
        note = notes[s]
        if not note and n_kept == 0:
          note = f"no neuroid with reliability > {MIN_CEILING}"
        elif not note and not np.isfinite(score_N[s]):
          note = metrics.UNDEFINED
        rows.append(
          {
            "rule": where["rule"],
            "seed": s,
            "epoch": where["epoch"],
            "step": where["step"],
            "layer": layer,
            "roi": roi,
            "subject": sub,
            "resolution": where["resolution"],
            "arm": where["arm"],
            "score": float("nan") if note else float(score_N[s]),
            "r_raw": float("nan") if note else float(raw_N[s]),
            "n_targets": n_kept,
            "n_defined": 0 if note else int(np.asarray(ceiled.n_defined_N)[s]),
            "n_folds": int(test_KxS.shape[0]),
            "note": note,
          }
        )
  return rows
