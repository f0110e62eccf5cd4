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
from leut.report import inference, tables

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
        f"{fmt_p(inference.p_floor(int(n), alt, exact_max_n=10**9))})"
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


def _config_command(workdir: Path) -> str:
  path = workdir_lib.Workdir(workdir).config
  cfg = json.loads(path.read_text()) if path.exists() else {}
  return cfg.get("command") or f"leut report --workdir {workdir}"


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
    "paired Cohen's d = mean/SD of the per-seed differences.",
    "",
  ]
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
        f"- {t['rule_a']} at {t['roi']} ({t['layer']}): Δρ = {t['mean_diff']:+.3f}, d = {fmt_num(t['d'], 2)}, "
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
    L += ["### Change after the first epoch (paper B's drop; drop_pct on seed means)", ""]
    L += md_table(
      drop,
      ["rule", "roi", "layer", "epoch_b", "rho_e0", "rho_e1", "delta", "ci_lo", "ci_hi", "drop_pct"],
      "results/first_epoch_drop.csv",
    )
  for name, title in (
    ("epoch1_vs_0", "Epoch 1 vs epoch 0 (paper B family 1b)"),
    ("vs_backprop", f"Each rule vs backprop at epoch {last} (paper B family 1a)"),
    ("trend", "Monotone trend over epochs ≥ 1 (per-seed Spearman, tested over seeds; 1c)"),
  ):
    if len(fam[name]):
      extra = ["rho_seed_mean_trend"] if name == "trend" else []
      L += [f"### {title}", ""] + md_table(fam[name], cols + ["p_fdr_dynamics"] + extra, f"results/tests_{name}.csv")
  L += ["`p_fdr_dynamics`: BH over the three training-dynamics families together (paper B's global correction).", ""]
  L += ["## What the seed count allows", ""]
  floors = [s for name, df in fam.items() for s in _floor_sentence(df, name)]
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
    L += ["## Stimulus-bootstrap 95% CIs (resampling stimuli; seeds and subjects averaged inside each draw)", ""]
    L += md_table(boot, ["rule", "roi", "layer", "epoch", "n_boot", "rho", "ci_lo", "ci_hi"], "results/stimulus_ci.csv")
  L += _differences_section(r.get("stimulus_differences"), last)
  ceil = r.get("noise_ceiling")
  if ceil is not None and len(ceil):
    L += ["## Noise ceiling (Nili et al. 2014, per-subject scheme)", ""]
    L += md_table(ceil, ["roi", "pairs", "n_subjects", "lower", "upper"], "results/noise_ceiling.csv")
  part = r.get("partial_summary")
  L += ["## Partial RSA (low-level controls regressed out of both RDMs)", ""]
  if part is not None and len(part):
    L += md_table(
      part,
      ["rule", "roi", "layer", "epoch", "control", "rho", "rho_partial", "delta", "ci_lo", "ci_hi", "n"],
      "results/partial_summary.csv",
    )
  else:
    L += ["Not available: this evaluation wrote no `results/partial.csv` (see `leut.report.stimulus_stats`).", ""]
  acc = r["accuracy"]
  L += ["## Held-out accuracy (fraction correct)", ""]
  acc_last = acc.loc[acc.groupby("rule", sort=False)["epoch"].idxmax()]
  L += md_table(acc_last, ["rule", "epoch", "msn", "ci"], "results/accuracy_summary.csv", {"epoch": "last per rule"})
  w = r["weights"]
  if len(w):
    L += ["## Weight displacement ‖W_e − W_0‖/‖W_0‖", ""]
    L += md_table(
      w[w.epoch == w.epoch.max()],
      ["rule", "layer", "epoch", "msn", "ci"],
      "results/weights_summary.csv",
      {"epoch": int(w.epoch.max())},
    )
  L += ["## Files", ""]
  L += ["Figures (PNG and PDF): " + ", ".join(f"`figures/{f}.png`" for f in r["figures"]) + ".", ""]
  L += ["Tables: " + ", ".join(f"`results/{f}.csv`" for f in r["tables"]) + ".", ""]
  path = workdir_lib.write_atomic(workdir_lib.Workdir(workdir).summary, "\n".join(L))
  return path
