"""Reports: tables, tests, figures and `summary.md` written from a workdir's tidy CSVs (never from memory).

  write_report(workdir, config)   reads results/{rsa,accuracy,weights}.csv (+ noise_ceiling.csv, partial.csv,
                                  bootstrap.csv, bootstrap_differences.csv, best_layer_cv.csv when the evaluation
                                  wrote them) and writes:

results/alignment.csv          rule, roi, layer, epoch, mean, sd, ci_lo, ci_hi, n, n_excluded   headline ρ over training
                               (n_excluded: seeds left out because their ρ is NaN, see excluded_seeds.csv)
results/alignment_all_layers.csv   the same for every layer (headline condition)
results/alignment_mean_rdm.csv the mean-RDM scheme ('rho', PROTOCOL §3.3) for the headline layers
results/alignment_change.csv   rule, roi, layer, epoch, delta, sd, ci_lo, ci_hi, n     Δρ vs untrained, per seed
results/first_epoch_drop.csv   rule, roi, layer, epoch_a, epoch_b, rho_e0, e0_ci_lo, e0_ci_hi, rho_e1, delta, ci_lo,
                               ci_hi, n, n_excluded, drop_pct, note (drop_pct only when the epoch-0 CI lies above 0)
results/rule_comparison.csv    rule, roi, layer, epoch, mean, sd, ci_lo, ci_hi, n + the vs-untrained test columns
results/tests_<family>.csv     sign-flip test families (`leut.report.families`; tests_vs_backprop.csv is a view of
                               tests_between_rules.csv)
results/excluded_seeds.csv     rule, epoch, roi, layer, n_seeds, n_excluded, seeds, reasons: seeds left out of the
                               headline statistics (NaN ρ: a diverged network, constant features)
results/best_layer.csv         best layer per rule, ROI, epoch (biased upward, labelled), and next to it the
                               cross-validated layer and held-out score (cv_layer, cv_mean, cv_ci_lo, cv_ci_hi, cv_n)
results/resolution_sweep.csv   ρ per resolution and arm (when the evaluation has several)
results/accuracy_summary.csv, results/weights_summary.csv, results/ground_truth.csv
results/accuracy_matched.csv, results/tests_accuracy_matched.csv   ρ at matched held-out accuracy per rule, and
                               rules compared there (`leut.report.accuracy_matched`)
results/partial_summary.csv, results/stimulus_ci.csv   when the evaluation wrote partial.csv / bootstrap.csv
                               (partial_summary: rho_partial as published, rho_partial_textbook beside it)
results/stimulus_differences.csv   headline rows of bootstrap_differences.csv (paired bootstrap differences)
results/contrast_inference.csv     the headline contrasts by sign-flip test, stimulus bootstrap and two-level
                               bootstrap, each with what it generalises over (`leut.report.contrast_inference`)
figures/{alignment, alignment_change, first_epoch_drop, best_layer, resolution_sweep, model_similarity, accuracy,
        weights, alignment_vs_accuracy}.{png,pdf}
results/<metric>_alignment.csv, tests_<metric>_*.csv, figures/<metric>.{png,pdf}   for cka / encoding when the
                               evaluation wrote results/cka.csv / encoding.csv (`leut.report.metrics`)
summary.md

The tables must hold exactly the configured milestones of every configured rule (`check_milestones`): analyses that
name epochs (epoch 1 vs 0, the first-epoch drop, the change vs epoch 0) never compare other epochs in their place.
Tables and summary.md are written atomically (`leut.workdir`). `leut report` also checks the evaluation's completion
marker first (`leut.experiment.write_report`); this function reads whatever CSVs the workdir holds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from leut import workdir as workdir_lib
from leut.errors import WorkdirError
from leut.report import (
  accuracy_matched,
  contrast_inference,
  families,
  figures,
  ground_truth,
  model_comparisons,
  seed_stats,
  summary,
  tables,
)
from leut.report import metrics as metrics_report
from leut.scoring import bn_calibration


def check_milestones(config, named_tables: dict[str, pd.DataFrame]) -> None:
  """Raise `WorkdirError` unless each table holds, for every configured rule, exactly its configured milestones."""
  from leut.config import milestone_epochs

  for name, df in named_tables.items():
    for rule in config.rules:
      want = milestone_epochs(config, rule)
      have = sorted({int(e) for e in df.loc[df.rule == rule, "epoch"]})
      if have == want:
        continue
      missing, extra = sorted(set(want) - set(have)), sorted(set(have) - set(want))
      what = "; ".join(
        ([f"epoch {', '.join(map(str, missing))} missing"] if missing else [])
        + ([f"epoch {', '.join(map(str, extra))} not configured"] if extra else [])
      )
      raise WorkdirError(
        f"results/{name}.csv: rule {rule} has epochs {have} where the config's milestones are {want} ({what}); "
        "analyses that name epochs would compare other epochs. Run `leut run` (or `leut evaluate`) with the "
        "workdir's config to train and score every milestone"
      )


def rule_comparison(stats: pd.DataFrame, vs_untrained: pd.DataFrame, last: int) -> pd.DataFrame:
  """Seed statistics at epoch 0 (every rule: the shared initialisation) and the last milestone, with the paired
  test against the untrained network (epoch-0 rows are the baseline itself: no test)."""
  keep = stats[(stats.epoch == 0) | (stats.epoch == last)].copy()
  test_cols = ["mean_diff", "d", "p", "p_fdr", "p_floor", "floored"]
  t = vs_untrained.rename(columns={"rule_a": "rule", "epoch_a": "epoch"})[["rule", "roi", "epoch"] + test_cols]
  out = keep.merge(t, on=["rule", "roi", "epoch"], how="left")
  rank = {r: i for i, r in enumerate([tables.baseline_rule(stats)] + list(dict.fromkeys(stats.rule)))}
  roi_rank = {r: i for i, r in enumerate(dict.fromkeys(stats.roi))}
  order = out.assign(_roi=out.roi.map(roi_rank), _rule=out.rule.map(rank))
  return out.loc[order.sort_values(["_roi", "epoch", "_rule"], kind="stable").index].reset_index(drop=True)


def partial_summary(partial: pd.DataFrame, config, last: int) -> pd.DataFrame:
  """Headline partial RSA: per-seed subject-mean ρ and partial ρ (the published re-ranked estimator and, when
  partial.csv has it, the textbook partial Spearman), Δ = partial − standard with a 95% t-interval over seeds."""
  view = tables.headline_view(partial, config)
  view = view[(view.epoch == 0) | (view.epoch == last)]
  values = [c for c in ("rho", "rho_partial", "rho_partial_textbook") if c in view.columns]
  g = view.assign(_missing=view["rho"].isna()).groupby(
    ["rule", "roi", "layer", "epoch", "control", "seed"], as_index=False, sort=False
  )
  per_seed = g.agg(**{c: (c, "mean") for c in values}, _missing=("_missing", "any"))
  per_seed.loc[per_seed["_missing"], values] = np.nan  # a seed is scored on every subject or not at all
  per_seed = per_seed.drop(columns="_missing")
  per_seed["delta"] = per_seed["rho_partial"] - per_seed["rho"]
  keys = ["rule", "roi", "layer", "epoch", "control"]
  means = per_seed.groupby(keys, sort=False)[values].mean().reset_index()
  d = seed_stats.summarise(per_seed, keys, "delta").rename(columns={"mean": "delta"}).drop(columns="sd")
  return means.merge(d, on=keys)


def stimulus_ci(boot: pd.DataFrame, config, last: int) -> pd.DataFrame:
  """Headline rows of `results/bootstrap.csv` (fixed layer per ROI, first resolution, native, all pairs) at epoch 0
  and the last milestone."""
  mapping = tables.layer_for_roi(config)
  px = tables.headline_resolution(boot, config)
  keep = (
    (boot.resolution == px)
    & (boot.arm == "native")
    & (boot.pairs == "all")
    & ((boot.epoch == 0) | (boot.epoch == last))
    & pd.Series([mapping.get(o) == l for o, l in zip(boot.roi, boot.layer)], index=boot.index)
  )
  return boot[keep].reset_index(drop=True)


def stimulus_differences(diffs: pd.DataFrame, config, last: int) -> pd.DataFrame:
  """Headline rows of `results/bootstrap_differences.csv` (fixed layer per ROI, first resolution, native, all pairs):
  the contrasts at the last milestone and every epoch-to-epoch step."""
  if not len(diffs):
    return diffs
  mapping = tables.layer_for_roi(config)
  px = tables.headline_resolution(diffs, config)
  keep = (
    (diffs.resolution == px)
    & (diffs.arm == "native")
    & (diffs.pairs == "all")
    & ((diffs.epoch_a == last) | (diffs.contrast == "vs_previous_epoch"))
    & pd.Series([mapping.get(o) == l for o, l in zip(diffs.roi, diffs.layer)], index=diffs.index, dtype=bool)
  )
  return diffs[keep].reset_index(drop=True)


def write_report(workdir, config) -> dict:
  """Read `results/*.csv` in `workdir`, write the report tables, `figures/` and `summary.md`; returns their paths."""
  wd = workdir_lib.Workdir(workdir)
  workdir = wd.root
  figs = wd.figures
  rsa = bn_calibration.published_rows(pd.read_csv(wd.table("rsa")))  # calibrated rows: results/bn_calibration.csv
  acc = pd.read_csv(wd.table("accuracy"))
  weights = wd.read_table("weights")
  check_milestones(config, {"rsa": rsa, "accuracy": acc, **({"weights": weights} if weights is not None else {})})
  weights = (
    weights if weights is not None else pd.DataFrame(columns=["rule", "seed", "epoch", "layer", "rel_displacement"])
  )
  rois = [r for r in config.data.rois if r in set(rsa.roi)] or list(dict.fromkeys(rsa.roi))
  per_seed = tables.seed_scores(tables.headline_view(rsa, config))
  last = tables.last_epoch(per_seed)
  out = {
    "px": tables.headline_resolution(rsa, config),
    "last_epoch": last,
    "layers": {roi: l for roi, l in tables.layer_for_roi(config).items() if roi in rois},
  }
  out["alignment"] = stats = tables.across_seeds(per_seed)
  out["alignment_all_layers"] = all_layers = tables.across_seeds(tables.seed_scores(tables.condition_view(rsa, config)))
  out["alignment_mean_rdm"] = tables.mean_rdm_scores(rsa, config)
  out["alignment_change"] = change = tables.change_vs_untrained(per_seed)
  out["excluded_seeds"] = tables.excluded_seeds(rsa, config)
  out["first_epoch_drop"] = drop = tables.first_epoch_drop(per_seed)
  opts = config.get("report", {}) if hasattr(config, "get") else {}
  out["families"] = fam = families.all_families(
    per_seed, alternative=opts.get("alternative", "two-sided"), n_mc=int(opts.get("n_mc", seed_stats.N_MC))
  )
  out["rule_comparison"] = rule_comparison(stats, fam["vs_untrained"], last)
  out["best_layer"] = tables.best_layer(rsa, config, wd.read_table("best_layer_cv"))
  out["accuracy"] = acc_stats = tables.accuracy_summary(acc)
  out["accuracy_matched"], out["tests_accuracy_matched"], out["pair_targets"] = accuracy_matched.accuracy_matched(
    per_seed, acc, alternative=opts.get("alternative", "two-sided"), n_mc=int(opts.get("n_mc", seed_stats.N_MC))
  )
  out["weights"] = w_stats = tables.weights_summary(weights)
  out["noise_ceiling"] = ceil = wd.read_table("noise_ceiling")
  partial = wd.read_table("partial")
  out["partial_summary"] = partial_summary(partial, config, last) if partial is not None else None
  boot = wd.read_table("bootstrap")
  out["stimulus_ci"] = stimulus_ci(boot, config, last) if boot is not None else None
  diffs = wd.read_table("bootstrap_differences")
  out["stimulus_differences"] = stimulus_differences(diffs, config, last) if diffs is not None else None
  two_level = wd.read_table("two_level_bootstrap")
  out["contrast_inference"] = contrast_inference.table(fam, diffs, two_level, config)
  out["model_similarity"] = sim = wd.read_table("model_similarity")  # an evaluation table: read, not rewritten
  if config.data.source == "synthetic":
    out["ground_truth"] = ground_truth.checks(rsa, config, brain_truth=wd.read_table("brain_truth"), ceiling=ceil)
  else:
    out["ground_truth"] = None
  if len(set(rsa.resolution)) > 1 or len(set(rsa.arm)) > 1:
    out["resolution_sweep"] = sweep = tables.resolution_sweep(rsa, config)
  else:
    sweep = None

  written = {}
  names = [
    "alignment",
    "alignment_all_layers",
    "alignment_mean_rdm",
    "alignment_change",
    "first_epoch_drop",
    "excluded_seeds",
    "rule_comparison",
    "best_layer",
    "accuracy",
    "accuracy_matched",
    "tests_accuracy_matched",
    "weights",
    "partial_summary",
    "stimulus_ci",
    "stimulus_differences",
    "contrast_inference",
    "ground_truth",
    "resolution_sweep",
  ]
  file_of = {"accuracy": "accuracy_summary", "weights": "weights_summary"}
  for name in names:
    df = out.get(name)
    if df is not None:
      path = wd.table(file_of.get(name, name))
      workdir_lib.write_csv(path, df)
      written[file_of.get(name, name)] = path
  for name, df in fam.items():
    written[f"tests_{name}"] = workdir_lib.write_csv(wd.table(f"tests_{name}"), df)

  formats = opts.get("figure_formats", figures.DEFAULT_FORMATS)
  with figures.saving_as(formats):  # report.figure_formats
    ceil_all = ceil[ceil.pairs == "all"] if ceil is not None else None
    paths = {
      "alignment": figures.alignment_over_training(
        stats,
        figs,
        rois=rois,
        ceilings=ceil_all,
        subtitle=f"Model–brain alignment over training ({out['px']} px stimuli, fixed layer per ROI)",
      )
    }
    if len(change):
      paths["alignment_change"] = figures.change_vs_untrained(change, figs, rois=rois)
    if len(drop):
      paths["first_epoch_drop"] = figures.first_epoch_drop(drop, figs, rois=rois)
    base = tables.baseline_rule(per_seed)
    profile = {base: 0, **{r: last for r in tables.trained_rules(per_seed)}}
    paths["best_layer"] = figures.layer_profile(all_layers, figs, epochs=profile, rois=rois)
    if sweep is not None:
      paths["resolution_sweep"] = figures.resolution_sweep(sweep, figs, rois=rois)
    if sim is not None and len(sim):
      paths["model_similarity"] = model_comparisons.figure(sim, config, figs)
    paths["accuracy"] = figures.accuracy_over_training(acc_stats, figs)
    points = accuracy_matched.milestone_points(stats, acc_stats)
    paths["alignment_vs_accuracy"] = figures.alignment_vs_accuracy(points, figs, rois=rois)
    paths["weights"] = figures.weight_displacement(w_stats, figs)
    extra = metrics_report.write_metric_report(wd, config, rois=rois)  # cka / encoding, when evaluated (eval.metrics)
    out["metrics_lines"] = metrics_report.summary_lines(extra["sections"])
    written.update(extra["tables"])
    paths.update(extra["figures"])
  out["figures"] = list(paths)
  out["tables"] = list(written)
  paths["summary"] = summary.write_summary(workdir, config, out)
  return {"figures": paths, "tables": written, "summary": paths["summary"]}
