"""results/cka.csv: linear CKA between each layer's features and each ROI's and subject's responses.

One row per rule, seed, epoch, layer, ROI, subject, resolution, arm and estimator ('biased', 'debiased'; see
`leut.rsa.cka`), with `cka`, `n_neuroids` (the neuroids scored: those with a finite response to every stimulus) and
`note` (non-empty where `cka` is NaN: `leut.scoring.metrics` notes, or why the brain side is undefined). A seed's
score for the report is the mean over subjects, as for RSA (`leut.report.metrics`).
"""

from __future__ import annotations

from functools import partial

import jax
import numpy as np

from leut import rsa
from leut.data.responses import ResponseData
from leut.scoring import metrics

ESTIMATORS = {"biased": False, "debiased": True}


@partial(jax.jit, static_argnames=("debiased",))
def _cka_NxB(feats_NxSxU, brain_BxSxV, *, debiased: bool):
  """CKA of N seeds' features with each of B response blocks; blocks one after another (`lax.map`), so memory stays
  at a few N x S x S Gram matrices however many ROIs and subjects there are."""
  return jax.lax.map(lambda y_SxV: rsa.cka(feats_NxSxU, y_SxV, debiased=debiased), brain_BxSxV).T


def brain_blocks(resp: ResponseData) -> list[tuple[str, str, np.ndarray]]:
  """(roi, subject, responses_SxV) of every ROI and subject, keeping the neuroids with a finite response to every
  stimulus (a NaN response, a neuroid that never saw a stimulus, would make CKA undefined for the whole block)."""
  out = []
  for roi in resp.rois:
    for subject in resp.subjects:
      y = resp.select(roi, subject)
      if y.shape[1]:
        out.append((roi, subject, y[:, np.isfinite(y).all(0)]))
  return out


def padded_blocks(blocks) -> np.ndarray:
  """The blocks' responses as one `BxSxV` array, each padded with zero columns to the widest: a zero column leaves
  Y Y' and so linear CKA unchanged, and one shape compiles once for every ROI and subject."""
  width = max(1, *(y.shape[1] for _, _, y in blocks))
  out = np.zeros((len(blocks), blocks[0][2].shape[0], width), np.float32)
  for b, (_, _, y) in enumerate(blocks):
    out[b, :, : y.shape[1]] = y
  return out


def cka_rows(feats: dict, resp: ResponseData, *, invalid_N, **where) -> list[dict]:
  """Rows of results/cka.csv for one checkpoint, resolution and arm.

  Args:
    feats: layer -> features `NxSxU` of N seeds, rows in the order of `resp.stimuli` (the RSA path's features).
    resp: the brain responses, aligned to the features (`metrics.aligned_responses`).
    invalid_N: seeds scored NaN whatever their features (a diverged network).
    where: rule, epoch, step, resolution, arm: copied into every row.
  """
  rows = []
  n_stimuli = len(resp.stimuli)
  blocks = brain_blocks(resp)
  if not blocks:
    return rows
  brain_BxSxV = padded_blocks(blocks)
  for layer, f_NxSxU in feats.items():
    f = np.asarray(f_NxSxU, np.float32)
    seed_notes = metrics.seed_notes(f, invalid_N)
    for estimator, debiased in ESTIMATORS.items():
      if debiased and n_stimuli < 4:
        value_NxB = np.full((f.shape[0], len(blocks)), np.nan)
      else:
        value_NxB = np.asarray(_cka_NxB(f, brain_BxSxV, debiased=debiased), np.float64)
      for b, (roi, subject, y_SxV) in enumerate(blocks):
        brain_note = ""
        if y_SxV.shape[1] == 0:
          brain_note = "no neuroid with a finite response to every stimulus"
        elif debiased and n_stimuli < 4:
          brain_note = f"debiased CKA needs at least 4 stimuli, got {n_stimuli}"
        for seed, value in enumerate(value_NxB[:, b]):
          note = seed_notes[seed] or brain_note or ("" if np.isfinite(value) else metrics.UNDEFINED)
          rows.append(
            {
              "rule": where["rule"],
              "seed": seed,
              "epoch": where["epoch"],
              "step": where["step"],
              "layer": layer,
              "roi": roi,
              "subject": subject,
              "resolution": where["resolution"],
              "arm": where["arm"],
              "estimator": estimator,
              "cka": float("nan") if note else float(value),
              "n_neuroids": int(y_SxV.shape[1]),
              "note": note,
            }
          )
  return rows
