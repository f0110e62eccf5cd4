"""Reductions of the tidy result tables that figures and the summary share (so both cite the same numbers)."""
from __future__ import annotations

import pandas as pd

# Paper A's fixed layer → ROI mapping (PROTOCOL §1.4), extended to V3/V4 by hierarchy position.
DEFAULT_LAYER_FOR_ROI = {"V1": "conv1", "V2": "conv1", "V3": "conv2", "V4": "conv2", "hV4": "conv2",
                         "LOC": "conv3", "IT": "fc1"}


def layer_for_roi(config) -> dict[str, str]:
  mapping = dict(DEFAULT_LAYER_FOR_ROI)
  if config is not None and "report" in config and config.report.get("layer_for_roi"):
    mapping.update(dict(config.report.layer_for_roi))
  return mapping


def headline_view(rsa: pd.DataFrame, config) -> pd.DataFrame:
  """Rows of the headline analysis: fixed layer per ROI, first resolution, native images, all pairs.

  Per-subject rows only (the 'mean' subject is the mean-RDM score and is reported separately).
  """
  mapping = layer_for_roi(config)
  px = rsa["resolution"].iloc[0] if config is None else int(list(config.eval.resolutions)[0])
  view = rsa[(rsa.resolution == px) & (rsa.arm == "native") & (rsa.pairs == "all")]
  return view[view.apply(lambda r: mapping.get(r["roi"]) == r["layer"], axis=1)]


def seed_scores(view: pd.DataFrame) -> pd.DataFrame:
  """Per (rule, roi, layer, epoch, seed): the mean over subjects of per-subject ρ ('rho_sub_mean', PROTOCOL §3.3)."""
  subj = view[view.subject != "mean"]
  return (subj.groupby(["rule", "roi", "layer", "epoch", "seed"], as_index=False)["rho"].mean())


def across_seeds(per_seed: pd.DataFrame) -> pd.DataFrame:
  """Mean, SD (ddof=1) and count over seeds."""
  g = per_seed.groupby(["rule", "roi", "layer", "epoch"])["rho"]
  return g.agg(mean="mean", sd="std", n="count").reset_index()
