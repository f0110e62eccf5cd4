"""Model-to-model analyses in the report: one figure and a short summary section from `results/model_similarity.csv`
(`leut.scoring.model_similarity`), in the headline condition (first resolution, native images).

figures/model_similarity.{png,pdf}: top row, per layer, 1 − ρ between each seed's RDM and its own epoch-0 RDM over
training (mean over seeds, one line per rule), with the rule's inter-seed dissimilarity (1 − mean ρ between
different seeds at the same epoch) dashed: drift above that line moves a layer further than two initialisations
differ. Bottom row, per layer, the rule × rule matrix of mean ρ between different seeds at the last kept milestone
(diagonal: inter-seed consistency, the ceiling of an off-diagonal cell).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from leut.report import figures, tables

SOURCE = "results/model_similarity.csv"


def headline(sim: pd.DataFrame, config) -> pd.DataFrame:
  px = tables.headline_resolution(sim, config)
  return sim[(sim.resolution == px) & (sim.arm == "native")]


def _matrix(view: pd.DataFrame, rules, layer, epoch) -> np.ndarray:
  m = np.full((len(rules), len(rules)), np.nan)
  at = view[(view.layer == layer) & (view.epoch_a == epoch)]
  for i, a in enumerate(rules):
    for j, b in enumerate(rules):
      if a == b:
        hit = at[(at.analysis == "inter_seed") & (at.rule_a == a)]
      else:
        hit = at[
          (at.analysis == "rule_vs_rule")
          & (at.seed_pairs == "different_seeds")
          & (((at.rule_a == a) & (at.rule_b == b)) | ((at.rule_a == b) & (at.rule_b == a)))
        ]
      if len(hit):
        m[i, j] = hit.rho.iloc[0]
  return m


def figure(sim: pd.DataFrame, config, out_dir: Path) -> list[Path]:
  import matplotlib.pyplot as plt

  view = headline(sim, config)
  layers = list(dict.fromkeys(view.layer))
  rvr = view[view.analysis == "rule_vs_rule"]
  last = int(rvr.epoch_a.max()) if len(rvr) else int(view.epoch_a.max())
  rules = [r for r in config.rules if r in set(view.rule_a) | set(view.rule_b)]
  fig, axes = plt.subplots(2, len(layers), figsize=(3.4 * len(layers), 6.8), squeeze=False, layout="constrained")
  drift = view[view.analysis == "drift_from_epoch0"]
  inter = view[view.analysis == "inter_seed"]
  for ax, layer in zip(axes[0], layers):
    for rule in rules:
      d = drift[(drift.layer == layer) & (drift.rule_a == rule)].sort_values("epoch_a")
      if d.epoch_a.nunique() < 2:
        continue
      c = figures.color(rule)
      ax.plot(d.epoch_a, d.dissimilarity, marker="o", ms=3.5, lw=1.6, color=c, label=rule)
      i = inter[(inter.layer == layer) & (inter.rule_a == rule)].sort_values("epoch_a")
      ax.plot(i.epoch_a, i.dissimilarity, ls="--", lw=1.0, color=c, label=f"{rule}: between seeds")
    figures.epoch_axis(ax, drift.epoch_a)
    ax.set_title(layer)
  axes[0][0].set_ylabel("1 − ρ to the same seed at epoch 0")
  for ax, layer in zip(axes[1], layers):
    m = _matrix(view, rules, layer, last)
    im = ax.imshow(m, vmin=-1, vmax=1, cmap="RdBu_r")
    ax.set_xticks(range(len(rules)), rules, rotation=45, ha="right")
    ax.set_yticks(range(len(rules)), rules if ax is axes[1][0] else [])
    for (i, j), v in np.ndenumerate(m):
      ax.text(j, i, "–" if np.isnan(v) else f"{v:.2f}", ha="center", va="center", fontsize=7)
    ax.set_title(f"{layer}, epoch {last}")
  fig.colorbar(im, ax=list(axes[1]), shrink=0.8, label="mean ρ between different seeds")
  handles, labels = axes[0][0].get_legend_handles_labels()
  if labels:  # no rule with two epochs (e.g. untrained alone) draws no line
    fig.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 6), frameon=False)
  fig.suptitle("Model-to-model RDM similarity (drift from epoch 0; rule vs rule)", fontsize=10)
  return figures.save(fig, out_dir, "model_similarity")


SUMMARY_COLUMNS = [
  "analysis",
  "rule_a",
  "layer",
  "epoch_a",
  "epoch_b",
  "resolution",
  "arm",
  "n_pairs",
  "rho",
  "rho_sd",
  "dissimilarity",
]


def summary_section(sim: pd.DataFrame | None, config) -> tuple[list[str], pd.DataFrame, dict]:
  """`(lines, rows, where)` of the summary section: its heading and text, then the rows (drift from epoch 0 and
  inter-seed consistency at the last milestone, headline condition) that `summary.md_table` shows with `where`."""
  if sim is None or not len(sim):
    return [], pd.DataFrame(), {}
  view = headline(sim, config)
  last = int(view.epoch_a.max())
  rows = view[(view.epoch_a == last) & view.analysis.isin(["drift_from_epoch0", "inter_seed"])]
  px = tables.headline_resolution(sim, config)
  lines = [
    "## Model-to-model RDM similarity",
    "",
    "How far training moves each layer's RDM from the same seed's epoch-0 RDM (drift, 1 − Spearman ρ), how alike "
    "networks of one rule from different seeds are (inter-seed ρ: the ceiling for comparing rules), and, at the "
    "`eval.stats_epochs` milestones, rule-vs-rule ρ between different seeds (figure `figures/model_similarity.png`; "
    f"every row in `{SOURCE}`).",
    "",
  ]
  return (
    lines,
    rows,
    {"resolution": px, "arm": "native", "epoch_a": last, "analysis": "drift_from_epoch0 or inter_seed"},
  )
