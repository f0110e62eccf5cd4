"""CKA and encoding in the report (`eval.metrics`), under the same seed-level statistics as RSA.

For each of results/cka.csv and results/encoding.csv the evaluation wrote, the headline condition (fixed layer per
ROI, first resolution, native images; `leut.report.tables`) gives a per-seed score, the mean over subjects (NaN when
any subject's is NaN, as for RSA), and from it:

  results/<metric>_alignment.csv         [estimator,] rule, roi, layer, epoch, mean, sd, ci_lo, ci_hi, n, n_excluded
  results/tests_<metric>_vs_untrained.csv, tests_<metric>_between_rules.csv
                                         the paired sign-flip families of `leut.report.families` on that score
                                         (BH-FDR within each family, and for CKA within each estimator)
  figures/<metric>.{png,pdf}             the score over training, one panel per ROI (CKA: the debiased estimator)

and, where the evaluation bootstrapped the metric (`eval.n_boot` > 0; `leut.scoring.metric_bootstrap`), its stimulus-
level statistics in summary.md: the stimulus-bootstrap CIs of results/<metric>_bootstrap.csv at epoch 0 and the last
milestone, and the trained-minus-untrained differences at the last milestone by the stimulus bootstrap
(<metric>_bootstrap_differences.csv) and the two-level bootstrap over seeds and stimuli
(<metric>_two_level_bootstrap.csv).

The CKA score is linear CKA ('biased' and 'debiased' estimators, `leut.rsa.cka`); the encoding score is the median
over reliable neuroids of held-out r / noise ceiling (`leut.scoring.encoding_scores`).
"""

from __future__ import annotations

import pandas as pd

from leut import workdir as workdir_lib
from leut.report import families, figures, seed_stats, tables
from leut.report.summary import md_table

# table -> (value column, its name in prose, its axis label)
METRICS = {
  "cka": ("cka", "linear CKA", "linear CKA (debiased)\nlayer features vs responses"),
  "encoding": ("score", "encoding score", "encoding score: median r / ceiling\n(held-out ridge prediction)"),
}
FIGURE_ESTIMATOR = "debiased"
TEST_FAMILIES = ("vs_untrained", "between_rules")


def seed_scores(df: pd.DataFrame, config, value: str) -> pd.DataFrame:
  """Per (estimator,) rule, roi, layer, epoch, seed at the headline condition: the mean over subjects of `value`."""
  mapping = tables.layer_for_roi(config)
  px = tables.headline_resolution(df, config)
  view = df[(df.resolution == px) & (df.arm == "native")]
  view = view[[mapping.get(roi) == layer for roi, layer in zip(view["roi"], view["layer"])]]
  keys = (["estimator"] if "estimator" in view else []) + ["rule", "roi", "layer", "epoch", "seed"]
  g = view.assign(_missing=view[value].isna()).groupby(keys, as_index=False, sort=False)
  out = g.agg(**{value: (value, "mean")}, _missing=("_missing", "any"))
  out.loc[out["_missing"], value] = float("nan")
  return out.drop(columns="_missing")


def _families(per_seed: pd.DataFrame, value: str, opts) -> dict[str, pd.DataFrame]:
  """The vs_untrained and between_rules families on `value` (one set per estimator, each adjusted on its own)."""
  kw = dict(alternative=opts.get("alternative", "two-sided"), n_mc=int(opts.get("n_mc", seed_stats.N_MC)))
  groups = per_seed.groupby("estimator", sort=False) if "estimator" in per_seed else [(None, per_seed)]
  out = {name: [] for name in TEST_FAMILIES}
  for estimator, sub in groups:
    scores = sub.drop(columns=["estimator"], errors="ignore").rename(columns={value: "rho"})
    for name in TEST_FAMILIES:
      t = getattr(families, name)(scores, **kw)
      t["statistic"] = f"{value}_a - {value}_b"
      if estimator is not None:
        t.insert(0, "estimator", estimator)
      out[name].append(t)
  return {name: pd.concat(parts, ignore_index=True) for name, parts in out.items()}


def write_metric_report(wd: workdir_lib.Workdir, config, *, rois) -> dict:
  """Tables and figures of every metric table present; returns {"sections", "tables", "figures"} (name -> path)."""
  opts = config.get("report", {}) if hasattr(config, "get") else {}
  sections, written, paths = {}, {}, {}
  for metric, (value, _, label) in METRICS.items():
    scores = wd.read_table(metric)
    if scores is None:
      remove_outputs(wd, metric)  # an evaluation without this metric: no stale table or figure of an earlier one
      continue
    per_seed = seed_scores(scores, config, value)
    keys = (["estimator"] if "estimator" in per_seed else []) + ["rule", "roi", "layer", "epoch"]
    stats = seed_stats.summarise(per_seed, keys, value)
    fams = _families(per_seed, value, opts)
    written[f"{metric}_alignment"] = workdir_lib.write_csv(wd.table(f"{metric}_alignment"), stats)
    for name, df in fams.items():
      written[f"tests_{metric}_{name}"] = workdir_lib.write_csv(wd.table(f"tests_{metric}_{name}"), df)
    shown = stats[stats.estimator == FIGURE_ESTIMATOR] if "estimator" in stats else stats
    if len(shown):
      paths[metric] = metric_over_training(shown, wd.figures, name=metric, ylabel=label, rois=rois)
    sections[metric] = {"alignment": stats, **fams, "last_epoch": tables.last_epoch(per_seed)}
    sections[metric].update(stimulus_level(wd, config, metric, tables.last_epoch(per_seed)))
  return {"sections": sections, "tables": written, "figures": paths}


def stimulus_level(wd: workdir_lib.Workdir, config, metric: str, last: int) -> dict:
  """The evaluation's stimulus-level tables of `metric` (`leut.scoring.metric_bootstrap`), headline condition (first
  resolution, native images): CIs at epoch 0 and the last milestone, and the vs-untrained differences at the last
  milestone by the stimulus bootstrap and the two-level bootstrap. Empty when the evaluation bootstrapped nothing."""
  out = {}
  boot = wd.read_table(f"{metric}_bootstrap")
  if boot is None or not len(boot):
    return out
  px = tables.headline_resolution(boot, config)
  here = (boot.resolution == px) & (boot.arm == "native")
  out["stimulus_ci"] = boot[here & ((boot.epoch == 0) | (boot.epoch == last))].reset_index(drop=True)
  for name in ("bootstrap_differences", "two_level_bootstrap"):
    d = wd.read_table(f"{metric}_{name}")
    if d is not None and len(d):
      keep = (d.contrast == "vs_untrained") & (d.epoch_a == last) & (d.resolution == px) & (d.arm == "native")
      out[name] = d[keep].reset_index(drop=True)
  return out


def remove_outputs(wd: workdir_lib.Workdir, metric: str) -> None:
  """Delete the report's tables and figure of `metric` (`write_metric_report` writes them only with its table)."""
  names = [f"{metric}_alignment"] + [f"tests_{metric}_{name}" for name in TEST_FAMILIES]
  for p in [wd.table(n) for n in names] + [wd.figures / f"{metric}.{ext}" for ext in ("png", "pdf")]:
    p.unlink(missing_ok=True)


def metric_over_training(stats: pd.DataFrame, out_dir, *, name: str, ylabel: str, rois=None):
  """One panel per ROI: the metric against epoch, a line per rule with its 95% t band over seeds."""
  rois = figures._roi_order(stats, rois)
  fig, axes = figures._panels(len(rois))
  for ax, roi in zip(axes, rois):
    sub = stats[stats.roi == roi]
    figures._rule_lines(ax, sub)
    figures.epoch_axis(ax, stats["epoch"])
    ax.set_title(f"{roi}  (layer {sub['layer'].iloc[0]})")
    ax.axhline(0, color="k", lw=0.5)
    ax.grid(alpha=0.3)
  axes[0].set_ylabel(f"{ylabel}\n(mean over subjects)\n{figures.BAND}")
  return figures._finish(fig, axes, out_dir, name, f"{METRICS[name][1]} over training (fixed layer per ROI)")


def summary_lines(sections: dict | None) -> list[str]:
  """The summary.md sections of the metrics (`write_metric_report`'s sections), each table citing its CSV."""
  lines = []
  for metric, sec in (sections or {}).items():
    value, prose, _ = METRICS[metric]
    last, stats = sec["last_epoch"], sec["alignment"]
    est = ["estimator"] if "estimator" in stats else []
    base = tables.baseline_rule(stats)
    shown = stats[(stats.epoch == last) & (stats.epoch > 0) | (stats.rule == base) & (stats.epoch == 0)]
    lines += [f"## {prose[0].upper() + prose[1:]} (`eval.metrics`)", ""]
    lines += [
      "CKA between each fixed layer's features and each ROI's responses (per subject; a seed's score is the mean "
      "over subjects), biased and debiased estimators (Kornblith et al. 2019; Song et al. 2012)."
      if metric == "cka"
      else "Ridge encoding: each neuroid predicted from the fixed layer's features, penalty chosen inside the "
      "training folds, held-out Pearson r averaged over folds, divided by the neuroid's noise ceiling and "
      "summarised by the median over reliable neuroids (per subject; a seed's score is the mean over subjects).",
      "",
    ]
    lines += md_table(
      shown,
      est + ["rule", "roi", "layer", "epoch", "msn", "ci", "n_excluded"],
      f"results/{metric}_alignment.csv",
      {"epoch": f"0 ({base}) or {last}"},
    )
    cols = est + ["rule_a", "rule_b", "roi", "layer", "epoch_a", "epoch_b", "n_seeds", "n_positive", "mean_diff"]
    cols += ["d", "p", "p_fdr", "p_floor", "floored"]
    for name in TEST_FAMILIES:
      if len(sec[name]):
        lines += [f"Paired sign-flip tests over seeds ({name}; mean_diff in {value}):", ""]
        lines += md_table(sec[name], cols, f"results/tests_{metric}_{name}.csv")
    lines += _stimulus_lines(sec, metric, est)
    lines += [f"Over all milestones: `results/{metric}_alignment.csv`, figure `figures/{metric}.png`.", ""]
  return lines


def _stimulus_lines(sec: dict, metric: str, est: list[str]) -> list[str]:
  """Stimulus-bootstrap CIs and the vs-untrained differences by both bootstraps (`stimulus_level`)."""
  ci = sec.get("stimulus_ci")
  if ci is None or not len(ci):
    return []
  value = METRICS[metric][0]
  lines = [
    "Stimulus-bootstrap 95% CIs at each ROI's fixed layer (stimuli resampled, seeds and subjects averaged inside "
    "each draw; the RSA bootstrap's resamples, `leut.scoring.metric_bootstrap`; they generalise over stimuli):",
    "",
  ]
  lines += md_table(
    ci, est + ["rule", "roi", "layer", "epoch", "n_boot", "n_undefined", value, "ci"], f"results/{metric}_bootstrap.csv"
  )
  cols = est + ["rule_a", "rule_b", "roi", "layer", "epoch_a", "epoch_b", "diff", "ci", "p", "p_fdr"]
  for name, over in (("bootstrap_differences", "stimuli"), ("two_level_bootstrap", "seeds and stimuli")):
    d = sec.get(name)
    if d is not None and len(d):
      lines += [f"Trained minus untrained, paired draw by draw (generalises over {over}):", ""]
      lines += md_table(d, cols, f"results/{metric}_{name}.csv", {"contrast": "vs_untrained"})
  return lines
