"""Ground-truth checks for the synthetic quickstart: does leut recover what the simulated brain was built to contain?

The synthetic THINGS-fMRI release (`leut.data.simulated_brain`) drives V1/V2 voxels by Gabor energy, LOC by shape
and IT by category. Three facts are checked from the CSVs, each with its numbers, never asserted by hand:

  (a) the layer of the untrained network with the highest seed-mean ρ for V1 is an early conv layer (any conv
      layer before the last one; conv1 or conv2 for the protocol CNN);
  (b) supervised training (backprop) raises fc1–IT alignment at the last milestone over epoch 0: one-sided exact
      sign-flip test over seeds of ρ_last − ρ_0 (alternative 'greater');
  (c) the untrained conv1 aligns with V1 above zero: one-sided sign-flip test of the per-seed ρ against 0;
  (d) per ROI, the brain RDMs the evaluation scored recover the simulation's noise-free RDM of that ROI
      (`results/brain_truth.csv`, `leut.scoring.brain_truth`): the truth RDM's Spearman ρ with the subject-mean RDM
      is positive at one-sided stimulus-label permutation p < 0.05 (stimulus images or rows out of register with
      the responses, or a time window without the response, leave it near 0). The mean per-subject ρ is shown next
      to the noise ceiling's lower bound; it need not reach it: the truth is the simulated features' RDM, and a
      recorded population samples those features unevenly (TVSD's V1 electrodes), which both animals share.
      This checks the data path (loader, time bins, repetition averaging, stimulus selection), not a network.

Checks (a)-(c) apply where the release has the ROI (a FreemanZiemba2013 stand-in has V1 and V2: (a), (c), (d)).

A check (a)-(c) passes when the effect has the expected sign and its p is below 0.05 or at the floor the seed count
allows (with 3 seeds the smallest one-sided p is 1/8 = 0.125, so 'all seeds agree' is the strongest evidence
available); `floored` says which.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from leut.report import seed_stats, tables

ALPHA = 0.05
COLUMNS = [
  "check",
  "statement",
  "expected",
  "observed",
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
  "alternative",
  "passed",
]


def _test(values_N, alternative="greater"):
  sf = seed_stats.sign_flip(np.asarray(values_N, np.float64)[None], alternative)
  m, _, lo, hi, n = seed_stats.t_interval(values_N)
  return dict(
    mean=m,
    ci_lo=lo,
    ci_hi=hi,
    n_seeds=int(sf.n_seeds[0]),
    n_positive=int(np.sum(np.asarray(values_N) > 0)),
    p=float(sf.p[0]),
    p_floor=float(sf.p_floor[0]),
    floored=bool(sf.floored[0]),
    alternative=alternative,
  )


def _passes(row):
  return bool(row["mean"] > 0 and (row["p"] < ALPHA or row["floored"]))


def checks(rsa: pd.DataFrame, config, *, brain_truth=None, ceiling=None) -> pd.DataFrame:
  """One row per ground-truth check (see module docstring); rows whose inputs are missing are left out.
  `brain_truth`, `ceiling`: results/brain_truth.csv and results/noise_ceiling.csv (None: no check (d))."""
  rows = []
  view = tables.condition_view(rsa, config)
  all_layers = tables.seed_scores(view)
  base = tables.baseline_rule(all_layers)
  seeds = sorted(set(all_layers.seed))
  conv_layers = [l for l in dict.fromkeys(all_layers.layer) if l.startswith("conv")]
  early = conv_layers[:-1] if len(conv_layers) > 1 else conv_layers
  # (a) best layer for V1 in the untrained network
  v1 = all_layers[(all_layers.rule == base) & (all_layers.epoch == 0) & (all_layers.roi == "V1")]
  if len(v1):
    stats = tables.across_seeds(v1).sort_values("mean", ascending=False)
    best = stats.iloc[0]
    others = ", ".join(f"{r.layer} {r['mean']:.3f}" for _, r in stats.iloc[1:].iterrows())
    rows.append(
      dict(
        check="a",
        statement="the untrained layer aligning best with the Gabor-driven V1 is an early conv "
        f"layer (highest seed-mean rho; the others in results/alignment_all_layers.csv: {others})",
        expected=" or ".join(early),
        observed=best.layer,
        rule=base,
        roi="V1",
        layer=best.layer,
        epoch=0,
        mean=best["mean"],
        ci_lo=best.ci_lo,
        ci_hi=best.ci_hi,
        n_seeds=int(best.n),
        n_positive=np.nan,
        p=np.nan,
        p_floor=np.nan,
        floored=False,
        alternative="",
        passed=bool(best.layer in early),
      )
    )
  # (b) backprop raises fc1-IT alignment over epoch 0
  bp = all_layers[(all_layers.rule == "backprop") & (all_layers.roi == "IT") & (all_layers.layer == "fc1")]
  if len(bp) and bp.epoch.max() > 0:
    last = int(bp.epoch.max())
    d = tables.seed_vector(bp, "backprop", last, "IT", seeds) - tables.seed_vector(bp, "backprop", 0, "IT", seeds)
    r = dict(
      check="b",
      statement=f"backprop raises fc1 alignment with the category-driven IT (epoch {last} minus "
      "epoch 0, paired by seed)",
      expected="increase",
      rule="backprop",
      roi="IT",
      layer="fc1",
      epoch=last,
      **_test(d),
    )
    r["observed"] = "increase" if r["mean"] > 0 else "no increase"
    r["passed"] = _passes(r)
    rows.append(r)
  # (c) untrained conv1 aligns with V1 above zero
  c1 = all_layers[
    (all_layers.rule == base) & (all_layers.epoch == 0) & (all_layers.roi == "V1") & (all_layers.layer == "conv1")
  ]
  if len(c1):
    r = dict(
      check="c",
      statement="the untrained conv1 aligns with V1 above zero (per-seed rho against 0)",
      expected="rho > 0",
      rule=base,
      roi="V1",
      layer="conv1",
      epoch=0,
      **_test(tables.seed_vector(c1, base, 0, "V1", seeds)),
    )
    r["observed"] = "rho > 0" if r["mean"] > 0 else "rho <= 0"
    r["passed"] = _passes(r)
    rows.append(r)
  rows += _truth_rows(brain_truth, ceiling)
  return pd.DataFrame(rows, columns=COLUMNS)


def _truth_rows(truth: pd.DataFrame | None, ceiling: pd.DataFrame | None) -> list[dict]:
  """Check (d) per ROI (module docstring)."""
  if truth is None or not len(truth):
    return []
  rows = []
  for roi, g in truth.groupby("roi", sort=False):
    per_subject = g[g.subject.astype(str) != "mean"]
    mean_row = g[g.subject.astype(str) == "mean"].iloc[0]
    lower = np.nan
    if ceiling is not None and len(per_subject) > 1:
      c = ceiling[(ceiling.roi == roi) & (ceiling.pairs == "all")]
      lower = float(c.lower.iloc[0]) if len(c) else np.nan
    rho = float(per_subject.rho.mean())
    ceiling_text = f"; the noise ceiling's lower bound is {lower:.3f}" if np.isfinite(lower) else ""
    rows.append(
      dict(
        check="d",
        statement=f"the scored {roi} RDMs recover the simulation's noise-free {roi} RDM (Spearman rho with the "
        f"subject-mean RDM {mean_row.rho:.3f}, one-sided stimulus-label permutation test; mean rho over "
        f"{len(per_subject)} subject(s) {rho:.3f}{ceiling_text})",
        expected="rho > 0",
        observed="rho > 0" if mean_row.rho > 0 else "rho <= 0",
        rule="simulation truth",
        roi=roi,
        layer="",
        epoch=np.nan,
        mean=float(mean_row.rho),
        ci_lo=np.nan,
        ci_hi=np.nan,
        n_seeds=np.nan,
        n_positive=np.nan,
        p=float(mean_row.p),
        p_floor=np.nan,
        floored=False,
        alternative="greater",
        passed=bool(mean_row.rho > 0 and mean_row.p < ALPHA),
      )
    )
  return rows
