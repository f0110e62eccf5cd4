"""The headline contrasts by three inferences side by side, each labelled with what it generalises over.

`results/contrast_inference.csv`: family, rule_a, epoch_a, rule_b, epoch_b, roi, layer, inference, generalises_over,
n_seeds, n_boot, estimate, ci_lo, ci_hi, p, p_fdr. For every row of the sign-flip families vs_untrained,
between_rules and epoch1_vs_0 (`leut.report.families`, headline condition), three rows:

  sign_flip            seeds              the paired sign-flip test over seeds (stimuli fixed; no interval)
  stimulus_bootstrap   stimuli            the paired stimulus-bootstrap difference (seeds averaged inside each draw;
                                          `results/bootstrap_differences.csv`)
  two_level_bootstrap  seeds and stimuli  seeds and stimuli resampled together (`results/two_level_bootstrap.csv`)

estimate is the difference rule_a − rule_b of the seed- and subject-mean ρ. Every rule's epoch 0 is the untrained
network, so an epoch-0 side matches the bootstrap's untrained baseline; a between-rules pair the bootstrap lists in
the other order is turned round (estimate and interval negated). A bootstrap row is missing (NaN) where the
evaluation did not bootstrap that milestone (`eval.stats_epochs`) or `eval.n_boot` is 0. Subjects are fixed in all.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from leut.report import tables

COLUMNS = [
  "family",
  "rule_a",
  "epoch_a",
  "rule_b",
  "epoch_b",
  "roi",
  "layer",
  "inference",
  "generalises_over",
  "n_seeds",
  "n_boot",
  "estimate",
  "ci_lo",
  "ci_hi",
  "p",
  "p_fdr",
]
FAMILIES = ("vs_untrained", "between_rules", "epoch1_vs_0")
INFERENCES = {
  "sign_flip": "seeds",
  "stimulus_bootstrap": "stimuli",
  "two_level_bootstrap": "seeds and stimuli",
}


def _side(rule, epoch):
  return ("epoch 0", 0) if int(epoch) == 0 else (rule, int(epoch))


def _headline(diffs: pd.DataFrame | None, config) -> dict:
  """`{(side_a, side_b, roi, layer): (row, sign)}` of the headline bootstrap contrasts, in both orders."""
  if diffs is None or not len(diffs):
    return {}
  mapping = tables.layer_for_roi(config)
  px = tables.headline_resolution(diffs, config)
  keep = (diffs.resolution == px) & (diffs.arm == "native") & (diffs.pairs == "all")
  keep &= np.array([mapping.get(o) == l for o, l in zip(diffs.roi, diffs.layer)], dtype=bool)
  out = {}
  for _, r in diffs[keep].iterrows():
    a, b = _side(r.rule_a, r.epoch_a), _side(r.rule_b, r.epoch_b)
    out[(a, b, r.roi, r.layer)] = (r, 1.0)
    out.setdefault((b, a, r.roi, r.layer), (r, -1.0))
  return out


def _bootstrap_row(base: dict, inference: str, hit) -> dict:
  row = dict(base, inference=inference, generalises_over=INFERENCES[inference])
  if hit is None:
    return row
  r, sign = hit
  lo, hi = sorted((sign * r.ci_lo, sign * r.ci_hi)) if np.isfinite(r.ci_lo) else (np.nan, np.nan)
  return dict(
    row,
    n_seeds=r.get("n_seeds", np.nan),
    n_boot=r.n_boot,
    estimate=sign * r["diff"],
    ci_lo=lo,
    ci_hi=hi,
    p=r.p,
    p_fdr=r.p_fdr,
  )


def table(families: dict[str, pd.DataFrame], stimulus: pd.DataFrame | None, two_level: pd.DataFrame | None, config):
  """`COLUMNS` rows (module docstring) from the report's families and the evaluation's bootstrap contrast tables."""
  boot = {"stimulus_bootstrap": _headline(stimulus, config), "two_level_bootstrap": _headline(two_level, config)}
  rows = []
  for family in FAMILIES:
    for _, t in families.get(family, pd.DataFrame()).iterrows():
      base = dict(
        family=family,
        rule_a=t.rule_a,
        epoch_a=int(t.epoch_a),
        rule_b=t.rule_b,
        epoch_b=int(t.epoch_b),
        roi=t.roi,
        layer=t.layer,
      )
      rows.append(
        dict(
          base,
          inference="sign_flip",
          generalises_over=INFERENCES["sign_flip"],
          n_seeds=t.n_seeds,
          estimate=t.mean_diff,
          p=t.p,
          p_fdr=t.p_fdr,
        )
      )
      key = (_side(t.rule_a, t.epoch_a), _side(t.rule_b, t.epoch_b), t.roi, t.layer)
      for inference, found in boot.items():
        rows.append(_bootstrap_row(base, inference, found.get(key)))
  return pd.DataFrame(rows, columns=COLUMNS)


SOURCE = "results/contrast_inference.csv"
SUMMARY_COLUMNS = [
  "rule_a",
  "rule_b",
  "roi",
  "layer",
  "epoch_a",
  "epoch_b",
  "inference",
  "generalises_over",
  "n_seeds",
  "estimate",
  "ci_lo",
  "ci_hi",
  "p",
  "p_fdr",
]


def _counts(inference: pd.DataFrame, family: str, alpha: float) -> str:
  g = inference[(inference.family == family) & inference.p.notna()]
  parts = [
    f"{int((r.p_fdr < alpha).sum())} of {len(r)} by the {name.replace('_', ' ')} ({INFERENCES[name]})"
    for name, r in g.groupby("inference", sort=False)
  ]
  return f"{family}: " + ", ".join(parts) if parts else f"{family}: no test"


def summary_section(inference: pd.DataFrame | None, alpha: float = 0.05) -> tuple[list[str], pd.DataFrame, dict]:
  """`(lines, rows, where)`: the section's heading and text, then the vs_untrained rows that `summary.md_table`
  shows with `where` (from `results/contrast_inference.csv`)."""
  if inference is None or not len(inference):
    return [], pd.DataFrame(), {}
  counts = "; ".join(_counts(inference, f, alpha) for f in FAMILIES if (inference.family == f).any())
  lines = [
    "## The headline contrasts by three inferences",
    "",
    f"Each contrast tested three ways (`{SOURCE}`): the sign-flip test over seeds (stimuli fixed), the stimulus "
    "bootstrap (networks fixed, seeds averaged in each draw), and the two-level bootstrap that resamples seeds and "
    "stimuli together (`leut.scoring.two_level_bootstrap`; it counts both sources of variance and its intervals err "
    "on the wide side). A claim meant to hold for new networks and new stimuli needs the two-level row. A bootstrap "
    "row is empty where the evaluation did not bootstrap that milestone (every milestone with "
    f"`eval.stats_epochs='all'`). Contrasts with BH-adjusted p below {alpha} (each inference adjusts within its own "
    f"families): {counts}.",
    "",
  ]
  return lines, inference[inference.family == "vs_untrained"], {"family": "vs_untrained"}
