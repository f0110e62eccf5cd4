"""Figures a person would rather look at than read; every figure is saved as PNG and PDF."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import pandas as pd  # noqa: E402

RULE_COLORS = {"untrained": "#555555", "backprop": "#d62728", "feedback_alignment": "#ff7f0e",
               "direct_feedback_alignment": "#bcbd22", "predictive_coding": "#1f77b4", "stdp": "#2ca02c",
               "predictive_coding_published": "#17becf", "stdp_published": "#98df8a"}


def _save(fig, out_dir: Path, name: str) -> list[Path]:
  out_dir.mkdir(parents=True, exist_ok=True)
  paths = [out_dir / f"{name}.png", out_dir / f"{name}.pdf"]
  for p in paths:
    fig.savefig(p, dpi=150, bbox_inches="tight")
  plt.close(fig)
  return paths


def _epoch_axis(ax, epochs):
  ax.set_xscale("symlog", linthresh=1)
  ax.set_xticks(sorted(set(int(e) for e in epochs)))
  ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
  ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
  ax.set_xlabel("training epoch (symlog axis)")


def alignment_over_training(stats: pd.DataFrame, out_dir: Path, *, rois=None, subtitle: str = "") -> list[Path]:
  """One panel per ROI: ρ against epoch (symlog), a line per rule with a ±1 SD band over seeds.

  The untrained network is drawn as a dashed horizontal reference (it exists only at epoch 0).
  """
  rois = [r for r in (rois or []) if r in set(stats["roi"])] or list(dict.fromkeys(stats["roi"]))
  fig, axes = plt.subplots(1, len(rois), figsize=(3.6 * len(rois), 3.4), sharey=False, squeeze=False)
  for ax, roi in zip(axes[0], rois):
    sub = stats[stats.roi == roi]
    layer = sub["layer"].iloc[0]
    for rule, r in sub.groupby("rule", sort=False):
      color = RULE_COLORS.get(rule)
      r = r.sort_values("epoch")
      sd = r["sd"].fillna(0).to_numpy()
      if len(r) == 1:
        ax.axhline(r["mean"].iloc[0], color=color or "k", ls="--", lw=1.2, label=f"{rule} (epoch 0)")
        continue
      ax.plot(r["epoch"], r["mean"], marker="o", ms=3.5, color=color, label=rule)
      ax.fill_between(r["epoch"], r["mean"] - sd, r["mean"] + sd, color=color, alpha=0.18, lw=0)
    _epoch_axis(ax, stats["epoch"])
    ax.set_title(f"{roi}  ({layer})")
    ax.axhline(0, color="k", lw=0.5)
    ax.grid(alpha=0.3)
  axes[0][0].set_ylabel("RSA alignment, Spearman ρ\n(mean over subjects; band ±1 SD over seeds)")
  handles, labels = axes[0][0].get_legend_handles_labels()
  fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 6), frameon=False,
             bbox_to_anchor=(0.5, -0.08))
  if subtitle:
    fig.suptitle(subtitle, y=1.02, fontsize=10)
  fig.tight_layout()
  return _save(fig, out_dir, "alignment")


def accuracy_over_training(acc: pd.DataFrame, out_dir: Path) -> list[Path]:
  """Held-out accuracy per rule against epoch, mean ± SD over seeds, chance level marked."""
  fig, ax = plt.subplots(figsize=(4.5, 3.4))
  for rule, r in acc.groupby("rule", sort=False):
    g = r.groupby("epoch")["accuracy"]
    m, s = g.mean(), g.std().fillna(0)
    if len(m) == 1:
      ax.axhline(m.iloc[0], color=RULE_COLORS.get(rule, "k"), ls="--", lw=1.2, label=f"{rule} (epoch 0)")
      continue
    ax.plot(m.index, m.values, marker="o", ms=3.5, color=RULE_COLORS.get(rule), label=rule)
    ax.fill_between(m.index, m - s, m + s, color=RULE_COLORS.get(rule), alpha=0.18, lw=0)
  ax.axhline(0.1, color="k", lw=0.6, ls=":", label="chance (10 classes)")
  _epoch_axis(ax, acc["epoch"])
  ax.set_ylabel("held-out accuracy")
  ax.set_ylim(0, 1)
  ax.grid(alpha=0.3)
  ax.legend(fontsize=7, frameon=False)
  fig.tight_layout()
  return _save(fig, out_dir, "accuracy")
