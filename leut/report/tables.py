"""Reductions of the tidy result tables that figures, tests and the summary share (so all cite the same numbers).

Conventions (PROTOCOL §3.3): a seed's score is the mean over subjects of per-subject Spearman ρ (`rho_sub_mean`);
seeds are the replicates (mean, SD with ddof=1, 95% Student-t interval over seeds). The headline analysis uses a
fixed layer per ROI (paper A), the first configured resolution, native images and all stimulus pairs.

A seed whose ρ is NaN (rsa.csv `note`: non-finite features or weights of a diverged network, constant features, a
constant RDM) is left out of every per-seed statistic; `n_excluded` counts those seeds in each row.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd

from leut import models
from leut.report import seed_stats
from leut.scoring.layer_choice import modal_layer

# Where each ROI sits along the network's blocks, as a fraction of their depth (0 = the first block, 1 = the last);
# the ROIs in READOUT_ROIS read the layer after the blocks (fc1). For the 3-block protocol CNN this is paper A's
# fixed mapping (PROTOCOL §1.4: V1, V2 → conv1; LOC → conv3; IT → fc1), with V3/V4 halfway (conv2).
ROI_DEPTH = {"V1": 0.0, "V2": 0.0, "V3": 0.5, "V4": 0.5, "hV4": 0.5, "LOC": 1.0}
READOUT_ROIS = ("IT",)
PROTOCOL_LAYERS = ("conv1", "conv2", "conv3", "fc1")
UNTRAINED = "untrained"
STAT_COLUMNS = ["mean", "sd", "ci_lo", "ci_hi", "n", "n_excluded"]


class UnmappedROIWarning(UserWarning):
  pass


def default_layer_for_roi(feature_layers, rois=()) -> dict[str, str]:
  """The default fixed layer of each ROI for a network whose scored layers are `feature_layers` (blocks in depth
  order, then the readout-side layer): block number round(d · (B − 1)) for an ROI at relative depth d
  (`ROI_DEPTH`), the last layer for IT. An ROI in `rois` with no known depth gets the last block, with a warning
  (so no ROI leaves the tables; set `report.layer_for_roi` to choose)."""
  layers = tuple(feature_layers)
  blocks = layers[:-1] or layers
  mapping = {roi: blocks[math.floor(d * (len(blocks) - 1) + 0.5)] for roi, d in ROI_DEPTH.items()}
  mapping.update({roi: layers[-1] for roi in READOUT_ROIS})
  for roi in rois:
    if roi not in mapping:
      mapping[roi] = blocks[-1]
      warnings.warn(
        f"ROI {roi!r} has no default layer; it is scored at {blocks[-1]!r} (set report.layer_for_roi to choose)",
        UnmappedROIWarning,
        stacklevel=2,
      )
  return mapping


DEFAULT_LAYER_FOR_ROI = default_layer_for_roi(PROTOCOL_LAYERS)


def layer_for_roi(config) -> dict[str, str]:
  """The fixed layer of each ROI: the depth-aware default for `config.model` (`default_layer_for_roi`), then the
  overrides in `report.layer_for_roi` (which must name scored layers)."""
  if config is None or "model" not in config:
    return dict(DEFAULT_LAYER_FOR_ROI)
  layers = models.feature_layers(config.model)
  rois = list(config.data.get("rois", [])) if "data" in config else []
  mapping = default_layer_for_roi(layers, rois)
  if "report" in config and config.report.get("layer_for_roi"):
    overrides = dict(config.report.layer_for_roi)
    unknown = {roi: layer for roi, layer in overrides.items() if layer not in layers}
    if unknown:
      raise ValueError(f"report.layer_for_roi: {unknown} name layers this model does not have; its layers: {layers}")
    mapping.update(overrides)
  return mapping


def headline_resolution(rsa: pd.DataFrame, config) -> int:
  if config is not None:
    px = int(list(config.eval.resolutions)[0])
    if px in set(rsa["resolution"]):
      return px
  return int(rsa["resolution"].iloc[0])


def condition_view(rsa: pd.DataFrame, config, *, resolution=None, arm="native", pairs="all") -> pd.DataFrame:
  """Rows of one evaluation condition (resolution, arm, pair set), every layer, per-subject and mean rows."""
  px = headline_resolution(rsa, config) if resolution is None else resolution
  return rsa[(rsa.resolution == px) & (rsa.arm == arm) & (rsa.pairs == pairs)]


def headline_view(rsa: pd.DataFrame, config) -> pd.DataFrame:
  """Rows of the headline analysis: fixed layer per ROI, first resolution, native images, all pairs.

  Per-subject rows only are used downstream (the 'mean' subject is the mean-RDM score, reported separately).
  """
  mapping = layer_for_roi(config)
  view = condition_view(rsa, config)
  return view[[mapping.get(roi) == layer for roi, layer in zip(view["roi"], view["layer"])]]


def seed_scores(view: pd.DataFrame, keys=("rule", "roi", "layer", "epoch", "seed")) -> pd.DataFrame:
  """Per (rule, roi, layer, epoch, seed): the mean over subjects of per-subject ρ ('rho_sub_mean', PROTOCOL §3.3).

  NaN when any subject's ρ is NaN: a seed is scored on every subject or not at all.
  """
  subj = view[view.subject != "mean"]
  g = subj.assign(_missing=subj["rho"].isna()).groupby(list(keys), as_index=False, sort=False)
  out = g.agg(rho=("rho", "mean"), _missing=("_missing", "any"))
  out.loc[out["_missing"], "rho"] = np.nan
  return out.drop(columns="_missing")


def across_seeds(per_seed: pd.DataFrame, keys=("rule", "roi", "layer", "epoch"), value="rho") -> pd.DataFrame:
  """Mean, SD (ddof=1), 95% t-interval and count over seeds."""
  return seed_stats.summarise(per_seed, list(keys), value)


def trained_rules(per_seed: pd.DataFrame) -> list[str]:
  """Rules with checkpoints beyond epoch 0 (in table order)."""
  return [r for r in dict.fromkeys(per_seed["rule"]) if per_seed.loc[per_seed.rule == r, "epoch"].max() > 0]


def last_epoch(per_seed: pd.DataFrame) -> int:
  """The last milestone reached by every trained rule (0 when nothing was trained)."""
  rules = trained_rules(per_seed)
  if not rules:
    return 0
  return int(min(per_seed.loc[per_seed.rule == r, "epoch"].max() for r in rules))


def seed_vector(per_seed: pd.DataFrame, rule: str, epoch: int, roi: str, seeds, value="rho") -> np.ndarray:
  """Per-seed values in the order of `seeds` (NaN where missing); the untrained rule exists only at epoch 0."""
  if rule == UNTRAINED:
    epoch = 0
  r = per_seed[(per_seed.rule == rule) & (per_seed.epoch == epoch) & (per_seed.roi == roi)]
  return r.set_index("seed")[value].reindex(list(seeds)).to_numpy(np.float64)


def baseline_rule(per_seed: pd.DataFrame) -> str | None:
  """The epoch-0 reference: the `untrained` rule if present, else any rule's epoch 0 (the same network)."""
  rules = list(dict.fromkeys(per_seed["rule"]))
  if UNTRAINED in rules:
    return UNTRAINED
  return rules[0] if rules else None


def change_vs_untrained(per_seed: pd.DataFrame) -> pd.DataFrame:
  """Δρ(rule, epoch) = ρ(rule, epoch, seed) − ρ(epoch 0, seed), summarised over seeds, per ROI (paired by seed)."""
  base = per_seed[per_seed.epoch == 0].groupby(["roi", "layer", "seed"])["rho"].first().rename("rho0")
  df = per_seed[per_seed.rule.isin(trained_rules(per_seed))].join(base, on=["roi", "layer", "seed"])
  df = df.assign(delta=df["rho"] - df["rho0"])
  return across_seeds(df, value="delta").rename(columns={"mean": "delta"}).sort_values(["roi", "rule", "epoch"])


def first_epoch_drop(per_seed: pd.DataFrame) -> pd.DataFrame:
  """Change from epoch 0 to the first milestone after it, per rule and ROI (paper B's 'drop after one epoch').

  delta = mean over seeds of ρ_e1 − ρ_e0 with a 95% t-interval (ci_lo, ci_hi); drop_pct = 100 (ρ̄_e0 − ρ̄_e1) / ρ̄_e0
  on seed means (paper B's convention), given only when the epoch-0 baseline is distinguishable from zero and
  positive: its 95% t-interval over seeds (e0_ci_lo, e0_ci_hi) lies above 0. Otherwise drop_pct is NaN and `note`
  says why (a percentage of a baseline that may be 0 can be any size). n_excluded: seeds without both scores.
  """
  cols = [
    "rule",
    "roi",
    "layer",
    "epoch_a",
    "epoch_b",
    "rho_e0",
    "e0_ci_lo",
    "e0_ci_hi",
    "rho_e1",
    "delta",
    "ci_lo",
    "ci_hi",
    "n",
    "n_excluded",
    "drop_pct",
    "note",
  ]
  rows = []
  for rule in trained_rules(per_seed):
    epochs = sorted(e for e in set(per_seed.loc[per_seed.rule == rule, "epoch"]) if e > 0)
    e1 = int(epochs[0])
    for roi in dict.fromkeys(per_seed["roi"]):
      sub = per_seed[(per_seed.rule == rule) & (per_seed.roi == roi)]
      seeds = sorted(set(sub.seed))
      a, b = seed_vector(per_seed, rule, 0, roi, seeds), seed_vector(per_seed, rule, e1, roi, seeds)
      both = np.isfinite(a) & np.isfinite(b)  # paired: the same seeds on both sides
      m, _, lo, hi, n = seed_stats.t_interval(np.where(both, b - a, np.nan))
      r0, _, lo0, hi0, _ = seed_stats.t_interval(a[both])
      r1 = float(np.mean(b[both])) if both.any() else np.nan
      defined = bool(lo0 > 0)
      note = "" if defined else "drop_pct not defined: the epoch-0 95% CI does not lie above 0"
      rows.append(
        dict(
          rule=rule,
          roi=roi,
          layer=sub.layer.iloc[0],
          epoch_a=0,
          epoch_b=e1,
          rho_e0=r0,
          e0_ci_lo=lo0,
          e0_ci_hi=hi0,
          rho_e1=r1,
          delta=m,
          ci_lo=lo,
          ci_hi=hi,
          n=n,
          n_excluded=len(seeds) - n,
          drop_pct=100 * (r0 - r1) / r0 if defined else np.nan,
          note=note,
        )
      )
  return pd.DataFrame(rows, columns=cols)


CV_COLUMNS = ["cv_layer", "cv_mean", "cv_ci_lo", "cv_ci_hi", "cv_n"]


def best_layer(rsa: pd.DataFrame, config, cv: pd.DataFrame | None = None) -> pd.DataFrame:
  """Per (rule, roi, epoch) the layer with the highest seed-mean ρ (paper B convention), headline condition.

  The maximum over layers of noisy scores is biased upward (`biased_upward` = True): the chosen layer's ρ is an
  optimistic estimate. `cv` (results/best_layer_cv.csv) adds the cross-validated counterpart (`CV_COLUMNS`, see
  `cross_validated_summary`); NaN where it was not computed (milestones outside `eval.stats_epochs`).
  """
  stats = across_seeds(seed_scores(condition_view(rsa, config)))
  idx = stats.groupby(["rule", "roi", "epoch"], sort=False)["mean"].idxmax().dropna()
  best = stats.loc[idx].rename(columns={"layer": "best_layer"})
  runner = []
  for _, r in best.iterrows():
    others = stats[
      (stats.rule == r.rule) & (stats.roi == r.roi) & (stats.epoch == r.epoch) & (stats.layer != r.best_layer)
    ]
    runner.append(others["mean"].max() if len(others) else np.nan)
  best = best.assign(
    next_best_mean=runner,
    n_layers=stats.groupby(["rule", "roi", "epoch"])
    .size()
    .reindex(pd.MultiIndex.from_frame(best[["rule", "roi", "epoch"]]))
    .to_numpy(),
    biased_upward=True,
  )
  best = best.reset_index(drop=True)
  if cv is None:
    return best.assign(**{c: np.nan for c in CV_COLUMNS})
  summary = cross_validated_summary(
    cv, config, resolution=headline_resolution(rsa, config), layers=list(dict.fromkeys(rsa["layer"]))
  )
  return best.merge(summary, on=["rule", "roi", "epoch"], how="left")


def cross_validated_summary(cv: pd.DataFrame, config, *, resolution=None, layers=()) -> pd.DataFrame:
  """Cross-validated best layer per (rule, roi, epoch) in the headline condition (native, all pairs).

  cv_layer: the most frequent choice over seeds and the 2 × n_splits halvings (ties: the earlier of `layers`);
  cv_mean, cv_ci_lo, cv_ci_hi, cv_n: mean and 95% t-interval over seeds of each seed's held-out score (the score on
  the half of the stimuli not used to choose; Kriegeskorte et al. 2009), so not biased upward by the choice.
  """
  px = int(list(config.eval.resolutions)[0]) if resolution is None else resolution
  view = cv[(cv.resolution == px) & (cv.arm == "native") & (cv.pairs == "all")].dropna(subset=["cv_score"])
  keys = ["rule", "roi", "epoch"]
  if not len(view):
    return pd.DataFrame(columns=keys + CV_COLUMNS)
  stats = across_seeds(view, keys=keys, value="cv_score").drop(columns="sd")
  stats = stats.rename(columns={"mean": "cv_mean", "ci_lo": "cv_ci_lo", "ci_hi": "cv_ci_hi", "n": "cv_n"})
  modal = {
    k: modal_layer([l for c in g["chosen_layers"] for l in str(c).split(";")], layers)
    for k, g in view.groupby(keys, sort=False)
  }
  stats["cv_layer"] = [modal[tuple(k)] for k in stats[keys].itertuples(index=False)]
  return stats[keys + CV_COLUMNS]


def resolution_sweep(rsa: pd.DataFrame, config) -> pd.DataFrame:
  """ρ (mean over subjects, summarised over seeds) against evaluation resolution and arm, fixed layer per ROI.

  Epochs: 0 (the untrained network) and the last milestone of each trained rule; pairs = all.
  """
  mapping = layer_for_roi(config)
  fixed = np.array([mapping.get(o) == l for o, l in zip(rsa["roi"], rsa["layer"])], bool)
  view = rsa[(rsa.pairs == "all").to_numpy() & fixed]
  per_seed = seed_scores(view, keys=("rule", "roi", "layer", "epoch", "resolution", "arm", "seed"))
  last = last_epoch(per_seed)
  per_seed = per_seed[(per_seed.epoch == 0) | (per_seed.epoch == last)]
  per_seed = per_seed[~((per_seed.epoch == 0) & (per_seed.rule != baseline_rule(per_seed)))]
  out = across_seeds(per_seed, keys=("rule", "roi", "layer", "epoch", "resolution", "arm"))
  return out.sort_values(["roi", "rule", "epoch", "arm", "resolution"]).reset_index(drop=True)


def accuracy_summary(acc: pd.DataFrame) -> pd.DataFrame:
  """Held-out accuracy per rule and epoch: mean, SD, 95% t-interval over seeds."""
  return across_seeds(acc, keys=("rule", "epoch"), value="accuracy")


def weights_summary(weights: pd.DataFrame) -> pd.DataFrame:
  """Relative weight displacement ‖W_e − W_0‖/‖W_0‖ per rule, layer and epoch over seeds (trained rules only)."""
  w = weights[weights.rule != UNTRAINED]
  if not len(w):
    return pd.DataFrame(columns=["rule", "layer", "epoch"] + STAT_COLUMNS)
  return across_seeds(w, keys=("rule", "layer", "epoch"), value="rel_displacement")


def mean_rdm_scores(rsa: pd.DataFrame, config) -> pd.DataFrame:
  """The mean-RDM scheme ('rho', subject = 'mean') for the headline layers, over seeds (reported separately)."""
  view = headline_view(rsa, config)
  view = view[view.subject == "mean"]
  return across_seeds(view[["rule", "roi", "layer", "epoch", "seed", "rho"]])


EXCLUDED_COLUMNS = ["rule", "epoch", "roi", "layer", "n_seeds", "n_excluded", "seeds", "reasons"]


def excluded_seeds(rsa: pd.DataFrame, config) -> pd.DataFrame:
  """Seeds left out of the headline statistics per condition (rule, epoch, ROI, layer): their ρ is NaN in rsa.csv.

  seeds: the excluded seed numbers (';'-separated); reasons: their distinct `note`s (e.g. non_finite_features for a
  diverged network, constant features for a dead layer).
  """
  view = headline_view(rsa, config)
  view = view[view.subject != "mean"]
  notes = view["note"].astype(object).fillna("") if "note" in view else pd.Series("", index=view.index)
  view = view.assign(_bad=view["rho"].isna(), _note=notes.astype(str))
  rows = []
  for (rule, epoch, roi, layer), g in view.groupby(["rule", "epoch", "roi", "layer"], sort=False):
    per_seed = g.groupby("seed", sort=True).agg(
      bad=("_bad", "any"), note=("_note", lambda x: ";".join(sorted(set(x) - {""})))
    )
    bad = per_seed[per_seed.bad]
    reasons = sorted(
      {n for note in bad.note for n in note.split(";") if n} or ({"rho undefined"} if len(bad) else set())
    )
    rows.append(
      dict(
        rule=rule,
        epoch=int(epoch),
        roi=roi,
        layer=layer,
        n_seeds=len(per_seed),
        n_excluded=len(bad),
        seeds=";".join(str(int(s)) for s in bad.index),
        reasons="; ".join(reasons),
      )
    )
  return pd.DataFrame(rows, columns=EXCLUDED_COLUMNS)
