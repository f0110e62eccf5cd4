r"""`summary.md`: the headline numbers, each table rendered from one report CSV and stating its filter.

Traceability contract (checked by `tests/report/`): every table is preceded by a line
`Source: \`results/<file>.csv\` where col=value, col=value` (or `(all rows)`); its column headers are that CSV's
column names, except `mean ± sd (n)` (= mean, sd, n) and `95% CI` (= ci_lo, ci_hi); every number is that CSV value
rounded as printed. Prose numbers repeat table cells.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from leut import workdir as workdir_lib
from leut.report import contrast_inference, families, model_comparisons, seed_stats, tables

RHO_FMT = "{:.3f}"


def fmt_p(p) -> str:
  """p-values with 3 significant digits: 1/32 = 0.0312, 2/32 = 0.0625, 2^-32 = 2.33e-10."""
  if p is None or not np.isfinite(p):
    return "–"
  return f"{p:.3g}"


def fmt_num(x, digits=3) -> str:
  if x is None or (isinstance(x, float) and math.isnan(x)):
    return "–"
  if isinstance(x, (bool, np.bool_)):
    return "yes" if x else "no"
  if isinstance(x, (int, np.integer)):
    return str(int(x))
  if isinstance(x, float) and math.isinf(x):
    return "inf" if x > 0 else "-inf"
  return f"{x:.{digits}f}"


def fmt_d(d) -> str:
  """Cohen's d with 2 decimals; NaN (zero spread, fewer than 2 seeds) is "not defined", never ±inf."""
  return "not defined" if d is None or not np.isfinite(d) else f"{d:.2f}"


def fmt_msn(mean, sd, n) -> str:
  return f"{mean:.3f} ± {sd:.3f} (n={int(n)})" if pd.notna(sd) else f"{mean:.3f} (n={int(n)})"


def fmt_ci(lo, hi) -> str:
  return f"[{lo:.3f}, {hi:.3f}]" if pd.notna(lo) else "–"


P_COLUMNS = ("p", "p_fdr", "p_floor", "p_fdr_dynamics")
INT_COLUMNS = (
  "n",
  "n_boot",
  "n_seeds",
  "n_positive",
  "n_layers",
  "n_subjects",
  "epoch",
  "epoch_a",
  "epoch_b",
  "resolution",
  "cv_n",
  "n_excluded",
  "n_undefined",
)


def md_table(df: pd.DataFrame, cols: list[str], source: str, where: dict | None = None) -> list[str]:
  """Markdown lines: the Source line, then `cols` of `df` (see the module's traceability contract)."""
  where = where or {}
  filt = ", ".join(f"{k}={v}" for k, v in where.items())
  lines = [f"Source: `{source}` " + (f"where {filt}" if filt else "(all rows)"), ""]
  heads = []
  for c in cols:
    heads.append({"msn": "mean ± sd (n)", "ci": "95% CI"}.get(c, c))
  lines += ["| " + " | ".join(heads) + " |", "|" + "---|" * len(cols)]
  for _, r in df.iterrows():
    cells = []
    for c in cols:
      if c == "msn":
        cells.append(fmt_msn(r["mean"], r["sd"], r["n"]))
      elif c == "ci":
        cells.append(fmt_ci(r["ci_lo"], r["ci_hi"]))
      elif c in P_COLUMNS:
        cells.append(fmt_p(r[c]))
      elif c == "d":  # "not defined" where a test gave no d; "–" where no test was run (no mean_diff)
        cells.append(fmt_d(r[c]) if pd.notna(r.get("mean_diff", 0.0)) else "–")
      elif c in ("floored", "passed", "biased_upward"):
        cells.append("–" if pd.isna(r[c]) else "yes" if bool(r[c]) else "no")
      elif c in INT_COLUMNS and pd.notna(r[c]):
        cells.append(str(int(r[c])))
      elif c in ("drop_pct",):
        cells.append(fmt_num(r[c], 1))
      else:
        v = r[c]
        cells.append(fmt_num(v) if isinstance(v, (float, np.floating, int, np.integer)) else str(v))
    lines.append("| " + " | ".join(cells) + " |")
  return lines + [""]


def _floor_sentence(df: pd.DataFrame, family: str) -> list[str]:
  """Honest-claims lines: which tests sit at the smallest p their seed count allows."""
  df = df.dropna(subset=["p"])
  if not len(df):
    return []
  if "method" not in df:
    df = df.assign(method="exact")
  out = []
  for (n, alt, method, floor), g in df.groupby(["n_seeds", "alternative", "method", "p_floor"]):
    k = int(g["floored"].sum())
    sided = "one-sided" if alt in ("greater", "less") else "two-sided"
    if method == "monte_carlo":
      what = (
        f"p = {fmt_p(floor)} is the smallest attainable with {int(n)} seeds and Monte Carlo sign flips "
        f"({sided}, 1/(1 + n_mc); exact enumeration would allow "
        f"{fmt_p(seed_stats.p_floor(int(n), alt, exact_max_n=10**9))})"
      )
    else:
      what = (
        f"p = {fmt_p(floor)} is the smallest attainable {sided} p with {int(n)} seeds "
        f"(exact, 2^{int(n)} sign assignments)"
      )
    if k:
      out.append(
        f"- `{family}`: {k} of {len(g)} tests floored: {what}; there every seed agreed in sign, and "
        "only more seeds can give a smaller p."
      )
    elif floor >= 0.05:
      out.append(f"- `{family}`: no test can reach p < 0.05: {what}.")
  return out


def _excluding_zero(g: pd.DataFrame, what: str) -> str:
  return f"{int(((g.ci_lo > 0) | (g.ci_hi < 0)).sum())} of {len(g)} {what}"


def _differences_section(diffs: pd.DataFrame | None, last: int) -> list[str]:
  """Paired bootstrap differences: how many CIs exclude 0 per contrast, then the vs-untrained rows at the last
  milestone."""
  if diffs is None or not len(diffs):
    return []
  at_last = diffs[diffs.epoch_a == last]
  parts = [
    _excluding_zero(g, what)
    for kind, what in (("vs_untrained", "rule-vs-untrained differences"), ("between_rules", "between-rule differences"))
    if len(g := at_last[at_last.contrast == kind])
  ]
  steps = diffs[diffs.contrast == "vs_previous_epoch"]
  counts = [f"at epoch {last} for " + " and ".join(parts)] if parts else []
  counts += [f"over all milestones for {_excluding_zero(steps, 'epoch-to-epoch steps')}"] if len(steps) else []
  L = [
    "## Paired stimulus-bootstrap differences",
    "",
    f"Differences of the seed- and subject-mean ρ inside each of the {int(diffs['n_boot'].iloc[0])} stimulus "
    "resamples that every rule, epoch and ROI share (paired; 95% percentile CI, two-sided bootstrap p, PROTOCOL "
    "§3.6; `p_fdr`: BH within each contrast). "
    + (f"In the headline condition the CI excludes 0 {', and '.join(counts)}. " if counts else "")
    + "Every contrast is in `results/bootstrap_differences.csv`.",
    "",
  ]
  vs = at_last[at_last.contrast == "vs_untrained"]
  if len(vs):
    L += md_table(
      vs,
      [
        "rule_a",
        "rule_b",
        "roi",
        "layer",
        "epoch_a",
        "epoch_b",
        "rho_a",
        "rho_b",
        "diff",
        "ci_lo",
        "ci_hi",
        "p",
        "p_fdr",
      ],
      "results/stimulus_differences.csv",
      {"contrast": "vs_untrained", "epoch_a": last},
    )
  return L


def _generalisation_lines() -> list[str]:
  return [
    "What each result generalises over: the t-intervals and the sign-flip tests take seeds as the replicates, so "
    "they generalise over networks (new initialisations and training-data draws) for these stimuli and these "
    "subjects, which are held fixed. The stimulus bootstrap (stimulus CIs and paired differences) resamples the "
    "stimuli with the networks fixed (seeds are averaged inside each draw), so it generalises over stimuli like "
    "these for these networks. Subjects are fixed effects everywhere: no result here is a claim about new subjects.",
    "",
  ]


def _family_lines() -> list[str]:
  return [
    "BH families (each test has one adjusted p): `p_fdr` in `tests_vs_untrained.csv` adjusts all its rows "
    "(every trained rule × ROI, at the last milestone) together; `tests_between_rules.csv` all its rows (every pair "
    "of trained rules × ROI; `tests_vs_backprop.csv` is a view of its rows with rule_b = backprop, with the same "
    "p_fdr); `tests_epoch1_vs_0.csv` all its rows; `tests_trend.csv` all its rows. `p_fdr_dynamics` adjusts the "
    "epoch1_vs_0 and trend rows together. In `bootstrap_differences.csv`, `p_fdr` adjusts the rows of one contrast "
    "(vs_untrained, between_rules or vs_previous_epoch) in one evaluation condition (resolution, arm, pairs). The "
    "ground-truth checks are three pre-specified one-sided tests, not adjusted.",
    "",
  ]


def _excluded_lines(excluded: pd.DataFrame | None) -> list[str]:
  """The sentence (and table) saying which seeds the per-seed statistics leave out, per condition."""
  if excluded is None or not len(excluded):
    return []
  out = excluded[excluded.n_excluded > 0]
  if not len(out):
    return ["Seeds left out: none (every headline ρ is defined).", ""]
  n_cond = len(out)
  L = [
    f"Seeds left out: in {n_cond} of {len(excluded)} headline conditions (rule × epoch × ROI) some seeds have an "
    "undefined ρ (NaN in `results/rsa.csv`, with its reason in `note`: non_finite_features / non_finite_parameters "
    "for a diverged network, constant features for a dead layer). They are left out of every per-seed statistic "
    "(means, intervals, sign-flip tests, d), and each table's `n_excluded` counts them:",
    "",
  ]
  return L + md_table(
    out,
    ["rule", "epoch", "roi", "layer", "n_seeds", "n_excluded", "seeds", "reasons"],
    "results/excluded_seeds.csv",
    {"n_excluded": "1 or more"},
  )


def _config_command(workdir: Path) -> str:
  path = workdir_lib.Workdir(workdir).config
  cfg = json.loads(path.read_text()) if path.exists() else {}
  return cfg.get("command") or f"leut report --workdir {workdir}"


def _accuracy_matched_lines(r: dict) -> list[str]:
  """Rules at matched held-out accuracy (`leut.report.accuracy_matched`): each pair at the highest accuracy both
  rules' seeds reach in summary.md, every target in the CSVs."""
  tests, pair_targets = r.get("tests_accuracy_matched"), r.get("pair_targets")
  if tests is None:
    return []
  L = ["## Alignment at matched held-out accuracy", ""]
  if not pair_targets:
    return L + ["Not applicable: it compares trained rules, and this run has fewer than two.", ""]
  L += [
    "Each pair of trained rules compared at held-out accuracies that every seed of both rules reaches: ρ "
    "interpolated linearly in accuracy between the two milestones that first bracket the target (never "
    "extrapolated), rule_a minus rule_b paired by seed, one BH family over every pair, target and ROI (`p_fdr`). "
    "Shown: each pair's highest target; every target in `results/tests_accuracy_matched.csv`, each rule's matched "
    "ρ in `results/accuracy_matched.csv`, ρ against accuracy in `figures/alignment_vs_accuracy.png`.",
    "",
  ]
  unmatched = [f"{a} vs {b}" for (a, b), t in pair_targets.items() if not len(t)]
  if unmatched:
    L += [
      "- Not defined for "
      + ", ".join(unmatched)
      + ": no held-out accuracy above the lowest is reached by every seed of both rules (their accuracy ranges "
      "over the milestones do not overlap), so they cannot be compared at matched accuracy without extrapolating.",
      "",
    ]
  if not len(tests):
    return L
  top = tests[tests.target_accuracy == tests.groupby(["rule_a", "rule_b"]).target_accuracy.transform("max")]
  L += md_table(
    top,
    [
      "rule_a",
      "rule_b",
      "roi",
      "layer",
      "target_accuracy",
      "n_seeds",
      "rho_a",
      "rho_b",
      "mean_diff",
      "d",
      "p",
      "p_fdr",
      "floored",
      "note",
    ],
    "results/tests_accuracy_matched.csv",
    {"target_accuracy": "the highest of each pair"},
  )
  floors = _floor_sentence(tests, "accuracy_matched")
  return L + (floors + [""] if floors else [])


def write_summary(workdir: Path, config, r: dict) -> Path:
  """Write `summary.md` from the report's tables `r` (name → DataFrame, as written under `results/`)."""
  workdir = Path(workdir)
  px = r["px"]
  last = r["last_epoch"]
  L = ["# leut summary", ""]
  cmd = _config_command(workdir)
  redraw = f"leut report --workdir {workdir}"
  L += [f"Reproduce: `{cmd}`" + (f" (redraw from the CSVs: `{redraw}`)." if cmd != redraw else "."), ""]
  L += [
    f"Rules: {', '.join(config.rules)}; seeds: {config.seeds}; epochs: {config.epochs}; milestones: "
    f"{list(config.milestones)}; data: {config.data.source}. Headline condition: {px} px, native images, all "
    "stimulus pairs, fixed layer per ROI (" + ", ".join(f"{k}→{v}" for k, v in r["layers"].items()) + ").",
    "",
  ]
  alts = {a for df in r["families"].values() if len(df) for a in df["alternative"]} or {"two-sided"}
  mc = any((df["method"] == "monte_carlo").any() for df in r["families"].values() if len(df))
  L += [
    "Statistics: a seed's score is the mean over subjects of per-subject Spearman ρ (PROTOCOL §3.3); seeds are "
    "the replicates; intervals are 95% Student-t intervals over seeds; tests are paired sign-flip tests over "
    "seeds (same seed = same initialisation; "
    + ("Monte Carlo beyond 20 seeds, " if mc else "exact, ")
    + f"{'/'.join(sorted(alts))} unless stated), BH-FDR within each family (`p_fdr`), "
    "paired Cohen's d = mean/SD of the per-seed differences (\"not defined\" when every seed's difference is the "
    "same: zero spread).",
    "",
  ]
  L += _generalisation_lines() + _family_lines() + _excluded_lines(r.get("excluded_seeds"))
  vs = r["families"]["vs_untrained"]
  if len(vs):
    L += [
      f"## Headlines: each rule at epoch {last} against the untrained network",
      "",
      "From `results/tests_vs_untrained.csv` (one row per rule and ROI; Δρ = rule − untrained, paired by seed):",
      "",
    ]
    for _, t in vs.iterrows():
      floor = " (the smallest attainable p with this seed count)" if t["floored"] else ""
      L.append(
        f"- {t['rule_a']} at {t['roi']} ({t['layer']}): Δρ = {t['mean_diff']:+.3f}, d = {fmt_d(t['d'])}, "
        f"{int(t['n_positive'])}/{int(t['n_seeds'])} seeds > 0, p = {fmt_p(t['p'])}{floor}, "
        f"p_fdr = {fmt_p(t['p_fdr'])}."
      )
    L.append("")
  gt = r.get("ground_truth")
  if gt is not None and len(gt):
    L += ["## Ground truth recovered (synthetic data)", ""]
    for _, g in gt.iterrows():
      mark = "✓" if g["passed"] else "✗"
      if g["check"] == "a":
        num = f"best layer {g['observed']} with ρ = {g['mean']:.3f} {fmt_ci(g['ci_lo'], g['ci_hi'])}"
      elif g["check"] == "d":
        num = f"ρ = {g['mean']:.3f}" + (f", permutation p = {fmt_p(g['p'])}" if pd.notna(g["p"]) else "")
      else:
        floor = f", the smallest attainable with {int(g['n_seeds'])} seeds" if g["floored"] else ""
        num = (
          f"mean {g['mean']:.3f} {fmt_ci(g['ci_lo'], g['ci_hi'])}, {int(g['n_positive'])}/{int(g['n_seeds'])} "
          f"seeds > 0, one-sided sign-flip p = {fmt_p(g['p'])}{floor}"
        )
      L.append(f"- {mark} ({g['check']}) {g['statement']}: expected {g['expected']}, observed {g['observed']}; {num}.")
    L += [""] + md_table(
      gt,
      [
        "check",
        "rule",
        "roi",
        "layer",
        "epoch",
        "mean",
        "ci_lo",
        "ci_hi",
        "n_seeds",
        "n_positive",
        "p",
        "p_floor",
        "floored",
        "passed",
      ],
      "results/ground_truth.csv",
    )
  L += ["## Alignment at epoch 0 and the last milestone", ""]
  comp = r["rule_comparison"]
  base = tables.baseline_rule(comp)
  comp = comp[(comp.epoch > 0) | (comp.rule == base)]
  L += [
    "Every rule's epoch 0 is the untrained network (same initialisation per seed), so only the baseline's "
    "epoch-0 row is shown. mean_diff, d, p: the trained rule minus the untrained network, paired by seed "
    "(`results/tests_vs_untrained.csv`).",
    "",
  ]
  L += md_table(
    comp,
    ["rule", "roi", "layer", "epoch", "msn", "ci", "mean_diff", "d", "p", "p_fdr", "floored"],
    "results/rule_comparison.csv",
    {"epoch": f"0 ({base}) or {last}"},
  )
  L += ["Over all milestones: `results/alignment.csv`, figure `figures/alignment.png`.", ""]
  fam = r["families"]
  cols = [
    "rule_a",
    "rule_b",
    "roi",
    "layer",
    "epoch_a",
    "epoch_b",
    "n_seeds",
    "n_positive",
    "mean_diff",
    "d",
    "p",
    "p_fdr",
    "p_floor",
    "floored",
  ]
  for name, title in (("between_rules", "Between trained rules at the last milestone (rule_a minus rule_b)"),):
    if len(fam[name]):
      L += [f"## {title}", ""] + md_table(fam[name], cols, f"results/tests_{name}.csv")
  L += ["## Training dynamics", ""]
  drop = r["first_epoch_drop"]
  if len(drop):
    L += [
      "### Change after the first epoch (paper B's drop; drop_pct on seed means)",
      "",
      "drop_pct = 100 (rho_e0 − rho_e1) / rho_e0 is given only where the epoch-0 95% CI (e0_ci_lo, e0_ci_hi) lies "
      "above 0; elsewhere it is not defined (–): a percentage of a baseline that may be 0 can take any size.",
      "",
    ]
    L += md_table(
      drop,
      [
        "rule",
        "roi",
        "layer",
        "epoch_b",
        "rho_e0",
        "e0_ci_lo",
        "e0_ci_hi",
        "rho_e1",
        "delta",
        "ci_lo",
        "ci_hi",
        "drop_pct",
      ],
      "results/first_epoch_drop.csv",
    )
  if len(fam["epoch1_vs_0"]):
    L += ["### Epoch 1 vs epoch 0 (paper B family 1b)", ""]
    L += md_table(fam["epoch1_vs_0"], cols + ["p_fdr_dynamics"], "results/tests_epoch1_vs_0.csv")
  if len(fam["vs_backprop"]):
    L += [
      f"### Each rule vs backprop at epoch {last} (paper B family 1a)",
      "",
      "These are the `between_rules` tests with rule_b = backprop, not new ones: same p, same p_fdr (adjusted once, "
      "in the between_rules family).",
      "",
    ]
    L += md_table(fam["vs_backprop"], cols, "results/tests_vs_backprop.csv")
  short = {rule: e for rule, e in families.trend_epochs(r["alignment"]).items() if len(e) < families.MIN_TREND_EPOCHS}
  if len(fam["trend"]) or short:
    L += ["### Monotone trend over epochs ≥ 1 (per-seed Spearman, tested over seeds; 1c)", ""]
  if len(fam["trend"]):
    L += md_table(fam["trend"], cols + ["p_fdr_dynamics", "rho_seed_mean_trend"], "results/tests_trend.csv")
  L += [
    f"- No trend test for {rule}: its milestones ≥ 1 are {e}, and a trend needs at least "
    f"{families.MIN_TREND_EPOCHS} (with two, each seed's Spearman is ±1: a comparison of two epochs, not a trend)."
    for rule, e in short.items()
  ] + ([""] if short else [])
  L += [
    "`p_fdr_dynamics`: BH over the epoch1_vs_0 and trend tests together (paper B's global correction; the "
    "vs_backprop rows keep their between_rules p_fdr).",
    "",
  ]
  L += ["## What the seed count allows", ""]
  floors = [s for name, df in fam.items() if name not in families.VIEWS for s in _floor_sentence(df, name)]
  floors += _floor_sentence(gt, "ground_truth") if gt is not None and len(gt) else []
  L += (floors or ["- No test is at its attainable floor."]) + [""]
  best = r["best_layer"]
  if len(best):
    sel = best[(best.epoch == 0) & (best.rule == tables.baseline_rule(best)) | (best.epoch == last) & (best.epoch > 0)]
    L += [
      "## Best layer per ROI",
      "",
      "best_layer, mean: the layer with the highest seed-mean ρ and that ρ (biased upward: a maximum over layers "
      "of noisy scores). cv_layer, cv_mean, cv_ci_lo, cv_ci_hi: cross-validated, per seed the layer chosen on a "
      "random half of the stimuli and scored on the other half (both ways, `results/best_layer_cv.csv`); the "
      "most frequent choice and the held-out ρ over seeds (– where not computed).",
      "",
    ]
    L += md_table(
      sel,
      [
        "rule",
        "roi",
        "epoch",
        "best_layer",
        "mean",
        "next_best_mean",
        "n_layers",
        "cv_layer",
        "cv_mean",
        "cv_ci_lo",
        "cv_ci_hi",
      ],
      "results/best_layer.csv",
      {"epoch": f"0 (baseline) or {last}"},
    )
  sweep = r.get("resolution_sweep")
  if sweep is not None and len(set(sweep["resolution"])) > 1:
    L += ["## Resolution sweep", "", "Figure `figures/resolution_sweep.png`.", ""]
    L += md_table(
      sweep,
      ["rule", "roi", "layer", "epoch", "arm", "resolution", "mean", "ci_lo", "ci_hi", "n"],
      "results/resolution_sweep.csv",
    )
  boot = r.get("stimulus_ci")
  if boot is not None and len(boot):
    L += [
      "## Stimulus-bootstrap 95% CIs (resampling stimuli; seeds and subjects averaged inside each draw)",
      "",
      "n_undefined: resamples in which some seed's or subject's ρ is undefined (fewer than two distinct stimulus "
      "pairs drawn, or a model constant on them); the CI is over the other resamples (– below 40 of them).",
      "",
    ]
    cols_b = ["rule", "roi", "layer", "epoch", "n_boot"] + (["n_undefined"] if "n_undefined" in boot else [])
    L += md_table(boot, cols_b + ["rho", "ci_lo", "ci_hi"], "results/stimulus_ci.csv")
  L += _differences_section(r.get("stimulus_differences"), last)
  ci_lines, ci_rows, ci_where = contrast_inference.summary_section(r.get("contrast_inference"))
  if ci_lines:
    L += ci_lines + md_table(ci_rows, contrast_inference.SUMMARY_COLUMNS, contrast_inference.SOURCE, ci_where)
  sim_lines, sim_rows, sim_where = model_comparisons.summary_section(r.get("model_similarity"), config)
  if sim_lines:
    L += sim_lines + md_table(sim_rows, model_comparisons.SUMMARY_COLUMNS, model_comparisons.SOURCE, sim_where)
  ceil = r.get("noise_ceiling")
  if ceil is not None and len(ceil):
    L += ["## Noise ceiling (Nili et al. 2014, per-subject scheme)", ""]
    L += md_table(ceil, ["roi", "pairs", "n_subjects", "lower", "upper"], "results/noise_ceiling.csv")
  part = r.get("partial_summary")
  L += ["## Partial RSA (low-level controls regressed out of both RDMs)", ""]
  if part is not None and len(part):
    textbook = "rho_partial_textbook" in part
    L += [
      "rho_partial is the published estimator: the control RDMs' ranks are regressed out of the model's and the "
      "brain's ranks, and the residuals are RE-RANKED and correlated (Spearman of rank residuals). "
      + (
        "rho_partial_textbook beside it is the textbook partial Spearman correlation (Pearson correlation of the "
        "same rank residuals, no re-ranking: the partial correlation of the rank correlation matrix). "
        if textbook
        else ""
      )
      + "delta, ci_lo, ci_hi: rho_partial − rho over seeds.",
      "",
    ]
    L += md_table(
      part,
      ["rule", "roi", "layer", "epoch", "control", "rho", "rho_partial"]
      + (["rho_partial_textbook"] if textbook else [])
      + ["delta", "ci_lo", "ci_hi", "n"],
      "results/partial_summary.csv",
    )
  else:
    L += ["Not available: this evaluation wrote no `results/partial.csv` (see `leut.scoring.stimulus_stats`).", ""]
  acc = r["accuracy"]
  L += ["## Held-out accuracy (fraction correct)", ""]
  acc_last = acc.loc[acc.groupby("rule", sort=False)["epoch"].idxmax()]
  L += md_table(acc_last, ["rule", "epoch", "msn", "ci"], "results/accuracy_summary.csv", {"epoch": "last per rule"})
  L += _accuracy_matched_lines(r)
  w = r["weights"]
  if len(w):
    L += ["## Weight displacement ‖W_e − W_0‖/‖W_0‖", ""]
    L += md_table(
      w[w.epoch == w.epoch.max()],
      ["rule", "layer", "epoch", "msn", "ci"],
      "results/weights_summary.csv",
      {"epoch": int(w.epoch.max())},
    )
  L += r.get("metrics_lines", [])  # cka / encoding sections (`leut.report.metrics`), when evaluated
  L += ["## Files", ""]
  L += ["Figures (PNG and PDF): " + ", ".join(f"`figures/{f}.png`" for f in r["figures"]) + ".", ""]
  L += ["Tables: " + ", ".join(f"`results/{f}.csv`" for f in r["tables"]) + ".", ""]
  path = workdir_lib.write_atomic(workdir_lib.Workdir(workdir).summary, "\n".join(L))
  return path
