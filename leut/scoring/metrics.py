"""Which scores an evaluation computes (`eval.metrics`) and the response-level brain data the non-RSA ones need.

  rsa        model RDM vs brain RDM (`leut.evaluate`, results/rsa.csv); always computed, the report builds on it
  cka        linear CKA between a layer's features and each ROI's and subject's responses (`cka_scores`,
             results/cka.csv)
  encoding   cross-validated ridge encoding of each ROI's and subject's responses from a layer's features,
             noise-ceiling normalised (`encoding_scores`, results/encoding.csv)

CKA and encoding read responses (stimuli x neurons or voxels, `leut.data.responses.ResponseData`), not RDMs: a brain
dataset given as precomputed RDMs only (`data.brain_rdms_dir`) cannot serve them (`leut.checks` refuses the config).
Both score the very features the RSA rows of the same checkpoint, layer, resolution and arm come from.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from leut.data.responses import ResponseData

METRICS = ("rsa", "cka", "encoding")
RESPONSE_METRICS = ("cka", "encoding")  # need response-level brain data

# `note` of a row whose score is NaN (the strings of `leut.evaluate`'s rsa.csv notes where they mean the same).
NON_FINITE_FEATURES = "non_finite_features"
NON_FINITE_PARAMETERS = "non_finite_parameters"
UNDEFINED = "undefined"  # e.g. features constant over stimuli, or no target reliable enough to score


def chosen(config) -> list[str]:
  """The metrics `eval.metrics` lists (["rsa"] when a config predates the field)."""
  return list(config.eval.get("metrics", ["rsa"]) or ["rsa"])


def response_metrics(config) -> list[str]:
  """The chosen metrics that need response-level data."""
  return [m for m in chosen(config) if m in RESPONSE_METRICS]


def aligned_responses(resp: ResponseData, stimuli: Sequence[str], *, where: str = "") -> ResponseData:
  """`resp` with its rows in the order of `stimuli` (the rows the features are extracted for).

  Raises:
    ValueError: naming `where` and the stimuli the responses lack.
  """
  row = {s: i for i, s in enumerate(resp.stimuli)}
  missing = [s for s in stimuli if s not in row]
  if missing:
    raise ValueError(
      f"{where or resp.dataset}: the responses lack {len(missing)} of the {len(stimuli)} scored stimuli "
      f"(e.g. {missing[:3]}), so CKA and encoding cannot be computed on the RSA stimuli"
    )
  return resp.take_stimuli(np.array([row[s] for s in stimuli], np.int64))


def seed_notes(feats_NxSxU: np.ndarray, invalid_N: np.ndarray) -> list[str]:
  """Per seed, why its rows are NaN whatever the brain side ("" when they may be defined): non-finite features of
  this layer, else a diverged network (`invalid_N`, as `leut.evaluate` flags it)."""
  bad_features_N = ~np.isfinite(np.asarray(feats_NxSxU).reshape(feats_NxSxU.shape[0], -1)).all(1)
  return [
    NON_FINITE_FEATURES if f else NON_FINITE_PARAMETERS if d else ""
    for f, d in zip(bad_features_N, np.asarray(invalid_N, bool))
  ]
