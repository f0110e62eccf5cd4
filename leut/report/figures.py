"""Figures a person would rather look at than read; every figure is saved in `report.figure_formats` (PNG and PDF
unless a config says otherwise; `saving_as`).

Bands are 95% Student-t intervals over seeds (mean ± t_{0.975, n−1} SD/√n), computed in `leut.report.tables`; each
figure is drawn from one of the report's CSV tables, so a figure can be redrawn from `results/` alone.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

RULE_COLORS = {
  "untrained": "#555555",
  "backprop": "#d62728",
  "feedback_alignment": "#ff7f0e",
  "direct_feedback_alignment": "#bcbd22",
  "predictive_coding": "#1f77b4",
  "stdp": "#2ca02c",
  "predictive_coding_published": "#17becf",
  "stdp_published": "#98df8a",
}
LAYER_COLORS = {"conv1": "#1b9e77", "conv2": "#d95f02", "conv3": "#7570b3", "fc1": "#e7298a", "fc2": "#66a61e"}
BAND = "band: 95% t-interval over seeds"
RHO = "Spearman ρ (model RDM vs brain RDM)"
plt.rcParams.update({"font.size": 9, "axes.titlesize": 10, "legend.fontsize": 8})


def _roi_order(frame: pd.DataFrame, rois) -> list[str]:
  """The ROIs present in `frame`, in the configured order `rois` (else in order of appearance)."""
  present = set(frame["roi"])
  return [r for r in (rois or []) if r in present] or list(dict.fromkeys(frame["roi"]))


def color(rule: str) -> str:
  if rule in RULE_COLORS:
    return RULE_COLORS[rule]
  cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
  return cycle[sum(map(ord, rule)) % len(cycle)]  # stable across processes


DEFAULT_FORMATS = ("png", "pdf")
_FORMATS = contextvars.ContextVar("figure_formats", default=DEFAULT_FORMATS)


@contextlib.contextmanager
def saving_as(formats: Sequence[str] | str):
  """Inside the block, `save` writes each figure in `formats` (e.g. `("png", "pdf")`, the default outside)."""
  token = _FORMATS.set((formats,) if isinstance(formats, str) else tuple(formats))
  try:
    yield
  finally:
    _FORMATS.reset(token)


def save(fig, out_dir: Path, name: str) -> list[Path]:
  out_dir = Path(out_dir)
  out_dir.mkdir(parents=True, exist_ok=True)
  paths = [out_dir / f"{name}.{fmt}" for fmt in _FORMATS.get()]
  for p in paths:
    fig.savefig(p, dpi=150, bbox_inches="tight")
  plt.close(fig)
  return paths


def epoch_axis(ax, epochs):
  ax.set_xscale("symlog", linthresh=1, linscale=0.6)
  ticks = sorted(set(int(e) for e in epochs))
  ax.set_xticks(ticks)
  ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
  ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
  if ticks:
    ax.set_xlim(-0.15, ticks[-1] * 1.15 + 0.2)
  ax.set_xlabel("training epoch (symlog axis)")


def _panels(n, width=3.4, height=3.0):
  cols = min(n, 4)
  rows = -(-n // cols)
  fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows + 0.4), squeeze=False)
  for ax in axes.flat[n:]:
    ax.set_visible(False)
  return fig, list(axes.flat[:n])


def _finish(fig, axes, out_dir: Path, name: str, title: str | None = None) -> list[Path]:
  """The shared end of a panel figure: one legend for all panels, the title, layout, and the saved files."""
  _legend(fig, axes)
  if title:
    fig.suptitle(title, fontsize=10)
  fig.tight_layout()
  return save(fig, out_dir, name)


def _legend(fig, axes, ncol=6, y=-0.02):
  handles, labels = {}, []
  for ax in axes:
    for h, l in zip(*ax.get_legend_handles_labels()):
      if l not in handles:
        handles[l] = h
        labels.append(l)
  if not labels:
    return
  fig.legend(
    [handles[l] for l in labels],
    labels,
    loc="upper center",
    ncol=min(len(labels), ncol),
    frameon=False,
    bbox_to_anchor=(0.5, y),
  )


def _rule_lines(ax, sub, value="mean", lo="ci_lo", hi="ci_hi", xlim=None):
  """A line with a band per rule over epochs; a rule with one epoch (untrained) is a dashed reference line.

  Bands get fainter as rules are added, so that overlapping intervals stay readable.
  """
  n_lines = sub.groupby("rule")["epoch"].nunique().gt(1).sum()
  alpha = 0.18 if n_lines <= 2 else 0.08
  for rule, r in sub.groupby("rule", sort=False):
    r = r.sort_values("epoch")
    c = color(rule)
    if len(r) == 1:
      ax.axhline(r[value].iloc[0], color=c, ls="--", lw=1.2, label=f"{rule} (epoch 0, reference)", zorder=1)
      if np.isfinite(r[lo].iloc[0]):
        ax.axhspan(r[lo].iloc[0], r[hi].iloc[0], color=c, alpha=0.07, lw=0, zorder=0)
      continue
    ax.plot(r["epoch"], r[value], marker="o", ms=3.5, lw=1.6, color=c, label=rule, zorder=3)
    ax.fill_between(r["epoch"], r[lo], r[hi], color=c, alpha=alpha, lw=0, zorder=2)


def alignment_over_training(
  stats: pd.DataFrame,
  out_dir: Path,
  *,
  rois=None,
  ceilings: pd.DataFrame | None = None,
  subtitle: str = "",
  name: str = "alignment",
) -> list[Path]:
  """One panel per ROI: ρ against epoch (symlog), a line per rule with its 95% t band over seeds.

  The untrained network is a dashed reference (it exists only at epoch 0); the Nili lower–upper noise ceiling
  (`ceilings`: roi, lower, upper) is a hatched band when the evaluation provided it.
  """
  rois = _roi_order(stats, rois)
  fig, axes = _panels(len(rois))
  for ax, roi in zip(axes, rois):
    sub = stats[stats.roi == roi]
    _rule_lines(ax, sub)
    if ceilings is not None and roi in set(ceilings["roi"]) and sub["mean"].notna().any():
      c = ceilings[ceilings.roi == roi].iloc[0]
      top = np.nanmax(sub[["mean", "ci_hi"]].to_numpy())
      span = top - min(0.0, np.nanmin(sub[["mean", "ci_lo"]].to_numpy()))
      if c["lower"] <= top + span:
        ax.axhspan(
          c["lower"],
          c["upper"],
          facecolor="none",
          edgecolor="#999999",
          hatch="///",
          lw=0,
          label="noise ceiling (Nili lower–upper)",
          zorder=0,
        )
      else:  # far above the data: a band would flatten every line, so state it instead
        ax.text(
          0.02,
          0.97,
          f"noise ceiling {c['lower']:.2f}–{c['upper']:.2f} (above axis)",
          transform=ax.transAxes,
          va="top",
          fontsize=7,
          color="#555555",
        )
    epoch_axis(ax, stats["epoch"])
    ax.set_title(f"{roi}  (layer {sub['layer'].iloc[0]})")
    ax.axhline(0, color="k", lw=0.5)
    ax.grid(alpha=0.3)
  axes[0].set_ylabel(f"{RHO}\n(mean over subjects)\n{BAND}")
  return _finish(fig, axes, out_dir, name, subtitle)


def change_vs_untrained(change: pd.DataFrame, out_dir: Path, *, rois=None) -> list[Path]:
  """Δρ = ρ(rule, epoch) − ρ(untrained) per ROI, paired by seed; band = 95% t-interval of the per-seed Δ."""
  rois = _roi_order(change, rois)
  fig, axes = _panels(len(rois))
  for ax, roi in zip(axes, rois):
    sub = change[change.roi == roi]
    _rule_lines(ax, sub, value="delta")
    epoch_axis(ax, change["epoch"])
    ax.axhline(0, color=color("untrained"), lw=1.0, ls="--", label="untrained (Δ = 0)")
    ax.set_title(f"{roi}  (layer {sub['layer'].iloc[0]})")
    ax.grid(alpha=0.3)
  axes[0].set_ylabel(f"Δρ vs untrained network (same seed)\n{BAND}")
  return _finish(fig, axes, out_dir, "alignment_change", "Change in alignment relative to the untrained network")


def first_epoch_drop(drop: pd.DataFrame, out_dir: Path, *, rois=None) -> list[Path]:
  """Bars: Δρ from epoch 0 to the first milestone per rule and ROI, 95% t error bars; % drop printed above."""
  rois = _roi_order(drop, rois)
  rules = list(dict.fromkeys(drop["rule"]))
  fig, ax = plt.subplots(figsize=(max(4.0, 1.3 * len(rois) * max(1, len(rules)) ** 0.5 + 1.5), 3.4))
  width = 0.8 / max(1, len(rules))
  x = np.arange(len(rois))
  for i, rule in enumerate(rules):
    r = drop[drop.rule == rule].set_index("roi").reindex(rois)
    err = np.abs(np.stack([r["delta"] - r["ci_lo"], r["ci_hi"] - r["delta"]]))
    xs = x + (i - (len(rules) - 1) / 2) * width
    e1 = int(r["epoch_b"].dropna().iloc[0])
    ax.bar(xs, r["delta"], width * 0.9, color=color(rule), label=f"{rule} (epoch {e1} − 0)")
    ax.errorbar(xs, r["delta"], yerr=np.nan_to_num(err), fmt="none", ecolor="k", lw=0.8, capsize=2)
    for xi, (d, pct) in enumerate(zip(r["delta"], r["drop_pct"])):
      if np.isfinite(pct):
        ax.annotate(
          f"{-pct:+.0f}%",
          (xs[xi], 0),
          xytext=(0, 3 if d < 0 else -10),
          textcoords="offset points",
          ha="center",
          fontsize=7,
        )
  ax.axhline(0, color="k", lw=0.6)
  ax.set_xticks(x)
  ax.set_xticklabels([f"{roi}\n({drop.loc[drop.roi == roi, 'layer'].iloc[0]})" for roi in rois])
  ax.set_ylabel("Δρ after the first epoch\n(error bars: 95% t-interval over seeds)")
  ax.set_title("Alignment change in the first epoch (% = change of seed-mean ρ)")
  ax.grid(axis="y", alpha=0.3)
  ax.legend(frameon=False, loc="best")
  fig.tight_layout()
  return save(fig, out_dir, "first_epoch_drop")


def layer_profile(stats: pd.DataFrame, out_dir: Path, *, epochs: dict[str, int], rois=None) -> list[Path]:
  """ρ against layer per ROI for each rule at the given epoch; the maximum (the 'best layer') is starred.

  Labelled as biased upward: the best layer is chosen on the same stimuli it is scored on.
  """
  rois = _roi_order(stats, rois)
  layers = list(dict.fromkeys(stats["layer"]))
  fig, axes = _panels(len(rois))
  x = np.arange(len(layers))
  for ax, roi in zip(axes, rois):
    for rule, epoch in epochs.items():
      r = stats[(stats.roi == roi) & (stats.rule == rule) & (stats.epoch == epoch)].set_index("layer").reindex(layers)
      if r["mean"].isna().all():
        continue
      c = color(rule)
      ax.plot(x, r["mean"], marker="o", ms=3.5, color=c, label=f"{rule}, epoch {epoch}")
      ax.fill_between(x, r["ci_lo"], r["ci_hi"], color=c, alpha=0.15, lw=0)
      b = int(np.nanargmax(r["mean"].to_numpy()))
      ax.plot(x[b], r["mean"].iloc[b], marker="*", ms=12, color=c, mec="k", mew=0.6, ls="none")
    ax.set_xticks(x)
    ax.set_xticklabels(layers)
    ax.set_xlabel("layer")
    ax.set_title(roi)
    ax.axhline(0, color="k", lw=0.5)
    ax.grid(alpha=0.3)
  axes[0].set_ylabel(f"{RHO}\n(mean over subjects)\n{BAND}")
  return _finish(
    fig,
    axes,
    out_dir,
    "best_layer",
    "Layer profile; ★ = best layer (max over layers: biased upward, not cross-validated)",
  )


def resolution_sweep(sweep: pd.DataFrame, out_dir: Path, *, rois=None) -> list[Path]:
  """ρ against evaluation resolution per ROI; a line per rule (last milestone; untrained at epoch 0), native solid,
  upsampled (32 px then upsampled) dashed; bands (native arm only) are 95% t-intervals over seeds."""
  rois = _roi_order(sweep, rois)
  fig, axes = _panels(len(rois))
  for ax, roi in zip(axes, rois):
    sub = sweep[sweep.roi == roi]
    for (rule, epoch, arm), r in sub.groupby(["rule", "epoch", "arm"], sort=False):
      r = r.sort_values("resolution")
      c = color(rule)
      ls = "-" if arm == "native" else "--"
      ax.plot(r["resolution"], r["mean"], marker="o", ms=3.5, color=c, ls=ls, label=f"{rule} (epoch {epoch}), {arm}")
      if arm == "native":  # one band per rule keeps the panel readable; the CSV has every interval
        ax.fill_between(r["resolution"], r["ci_lo"], r["ci_hi"], color=c, alpha=0.10, lw=0)
    ax.set_xscale("log", base=2)
    ticks = sorted(set(sweep["resolution"]))
    ax.set_xticks(ticks)
    ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.set_xlabel("evaluation resolution (px, log axis)")
    ax.set_title(f"{roi}  (layer {sub['layer'].iloc[0]})")
    ax.axhline(0, color="k", lw=0.5)
    ax.grid(alpha=0.3)
  axes[0].set_ylabel(f"{RHO}\n(mean over subjects)\n{BAND} (native)")
  _legend(fig, axes, ncol=3)
  fig.suptitle("Alignment against evaluation resolution (native: solid; upsampled from 32 px: dashed)", fontsize=10)
  fig.tight_layout()
  return save(fig, out_dir, "resolution_sweep")


def accuracy_over_training(acc_stats: pd.DataFrame, out_dir: Path, *, n_classes: int = 10) -> list[Path]:
  """Held-out accuracy per rule against epoch, mean and 95% t band over seeds, chance level marked."""
  fig, ax = plt.subplots(figsize=(4.8, 3.4))
  _rule_lines(ax, acc_stats)
  ax.axhline(1 / n_classes, color="k", lw=0.6, ls=":", label=f"chance ({n_classes} classes)")
  epoch_axis(ax, acc_stats["epoch"])
  ax.set_ylabel(f"held-out accuracy (fraction)\n{BAND}")
  ax.set_ylim(0, 1)
  ax.grid(alpha=0.3)
  ax.legend(frameon=False, loc="upper left")
  ax.set_title("Task accuracy on held-out images")
  fig.tight_layout()
  return save(fig, out_dir, "accuracy")


def weight_displacement(w_stats: pd.DataFrame, out_dir: Path) -> list[Path]:
  """‖W_e − W_0‖/‖W_0‖ against epoch, one panel per trained rule, a line per layer (95% t band over seeds)."""
  rules = list(dict.fromkeys(w_stats["rule"])) or ["(none trained)"]
  fig, axes = _panels(len(rules), width=3.6)
  for ax, rule in zip(axes, rules):
    for layer, r in w_stats[w_stats.rule == rule].groupby("layer", sort=False):
      r = r.sort_values("epoch")
      c = LAYER_COLORS.get(layer)
      ax.plot(r["epoch"], r["mean"], marker="o", ms=3.5, color=c, label=layer)
      ax.fill_between(r["epoch"], r["ci_lo"], r["ci_hi"], color=c, alpha=0.18, lw=0)
    if len(w_stats):
      epoch_axis(ax, w_stats["epoch"])
    else:
      ax.text(0.5, 0.5, "no trained rule: weights never move", ha="center", va="center", transform=ax.transAxes)
    ax.set_title(rule)
    ax.grid(alpha=0.3)
  axes[0].set_ylabel(f"relative weight displacement\n‖W_e − W_0‖ / ‖W_0‖\n{BAND}")
  return _finish(
    fig,
    axes,
    out_dir,
    "weights",
    "Weight displacement from initialisation"
    if len(rules) < 2
    else "How far each layer's weights moved from initialisation",
  )


def alignment_vs_accuracy(points: pd.DataFrame, out_dir: Path, *, rois=None) -> list[Path]:
  """One panel per ROI: seed-mean ρ against seed-mean held-out accuracy, a line per rule through its milestones in
  epoch order, 95% t error bars over seeds on both axes (the rules compared at matched accuracy:
  results/tests_accuracy_matched.csv).

  `points`: `accuracy_matched.milestone_points` (results/alignment.csv beside results/accuracy_summary.csv).
  """
  rois = _roi_order(points, rois)
  fig, axes = _panels(len(rois))
  for ax, roi in zip(axes, rois):
    sub = points[points.roi == roi]
    for rule, r in sub.groupby("rule", sort=False):
      r = r.sort_values("epoch")
      xerr = np.abs(r[["acc_ci_lo", "acc_ci_hi"]].to_numpy().T - r["acc_mean"].to_numpy())
      yerr = np.abs(r[["ci_lo", "ci_hi"]].to_numpy().T - r["mean"].to_numpy())
      single = len(r) == 1
      ax.errorbar(
        r["acc_mean"],
        r["mean"],
        xerr=np.nan_to_num(xerr),
        yerr=np.nan_to_num(yerr),
        color=color(rule),
        marker="*" if single else "o",
        ms=8 if single else 3.5,
        lw=0 if single else 1.4,
        elinewidth=0.6,
        capsize=0,
        label=f"{rule} (epoch 0)" if single else rule,
        zorder=3,
      )
    ax.set_title(f"{roi}  (layer {sub['layer'].iloc[0]})")
    ax.set_xlabel("held-out accuracy (fraction)")
    ax.axhline(0, color="k", lw=0.5)
    ax.grid(alpha=0.3)
  axes[0].set_ylabel(f"{RHO}\n(mean over subjects)\nbars: 95% t-intervals over seeds")
  return _finish(fig, axes, out_dir, "alignment_vs_accuracy", "Alignment against held-out accuracy over training")
