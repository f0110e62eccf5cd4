"""Test families over seeds (PROTOCOL §3.7–3.9): exact paired sign-flip tests, BH-FDR per family, paired d.

Every test uses the headline per-seed scores (fixed layer per ROI, mean over subjects of per-subject ρ) and pairs
seeds (same seed = same initialisation). One tidy table per family, written to `results/tests_<family>.csv`:

  vs_untrained   each trained rule at the last milestone vs the untrained network, per ROI       two-sided
  between_rules  every pair of trained rules at the last milestone, per ROI; a pair with backprop has backprop as
                 rule_b (the reference)                                                           two-sided
  epoch1_vs_0    each trained rule at its first milestone after 0 vs epoch 0, per ROI (paper B 1b) two-sided
  vs_backprop    VIEW of between_rules: its rows with rule_b = backprop (paper B 1a), same p and p_fdr
  trend          per-seed Spearman(epoch, ρ) over epochs ≥ 1, tested against 0 (paper B 1c); only for rules
                 with at least three milestones ≥ 1 (fewer: no test, the summary says so)          two-sided

Every test is in exactly one BH family, so it has one adjusted p (`p_fdr`): the rows of vs_untrained, of
between_rules (with the vs_backprop rows among them), of epoch1_vs_0 and of trend are each adjusted together, over
all ROIs. The training-dynamics families epoch1_vs_0 and trend are also adjusted jointly (`p_fdr_dynamics`), as
paper B did globally; vs_backprop is not adjusted again (its rows already have their between_rules p_fdr).
What the tests generalise over: seeds (networks from new initialisations and training-data draws); the stimuli and
the subjects are fixed (subjects are fixed effects: the conclusion is about these subjects' RDMs).
`mean_diff` is mean_i (a_i − b_i) for comparisons and the mean per-seed Spearman coefficient for `trend`; `d` =
mean/SD(ddof=1) of the same per-seed values (NaN, "not defined", with zero spread). `n_seeds` counts the seeds with a
finite value, `n_excluded` the others (NaN in rsa.csv: a diverged seed, constant features).
Paper B's descriptive trend, Spearman(epoch, seed-mean ρ), is kept as `rho_seed_mean_trend` (not a test: with E
epochs it is one number, and its null would treat epochs, not seeds, as replicates).
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from scipy import stats as sps

from leut.report import seed_stats, tables

COLUMNS = [
  "family",
  "rule_a",
  "rule_b",
  "roi",
  "layer",
  "epoch_a",
  "epoch_b",
  "n_seeds",
  "n_excluded",
  "n_positive",
  "mean_diff",
  "d",
  "p",
  "p_fdr",
  "p_floor",
  "floored",
  "alternative",
  "method",
  "statistic",
]
DYNAMICS = ("epoch1_vs_0", "trend")  # adjusted jointly in p_fdr_dynamics
FAMILIES = ("vs_untrained", "between_rules", "epoch1_vs_0", "vs_backprop", "trend")
VIEWS = {"vs_backprop": "between_rules"}  # a view's rows are its family's rows (same p, same p_fdr)
REFERENCE = "backprop"
MIN_TREND_EPOCHS = 3


def _seeds(per_seed):
  return sorted(set(per_seed["seed"]))


def _comparisons(per_seed, family, specs, alternative, n_mc):
  """specs: [(rule_a, epoch_a, rule_b, epoch_b, roi)] → one tidy row each (family-wise FDR added)."""
  seeds = _seeds(per_seed)
  layer = per_seed.groupby("roi")["layer"].first()
  diffs = np.array(
    [
      tables.seed_vector(per_seed, ra, ea, roi, seeds) - tables.seed_vector(per_seed, rb, eb, roi, seeds)
      for ra, ea, rb, eb, roi in specs
    ]
  ).reshape(len(specs), len(seeds))
  rows = [
    dict(
      family=family,
      rule_a=ra,
      rule_b=rb,
      roi=roi,
      layer=layer[roi],
      epoch_a=ea,
      epoch_b=0 if rb == tables.UNTRAINED else eb,
      statistic="rho_a - rho_b",
    )
    for ra, ea, rb, eb, roi in specs
  ]
  return _finish(rows, diffs, alternative, n_mc)


def _finish(rows, values_KxN, alternative, n_mc):
  if not rows:
    return pd.DataFrame(columns=COLUMNS)
  sf = seed_stats.sign_flip(values_KxN, alternative, n_mc=n_mc)
  df = pd.DataFrame(rows)
  df["n_seeds"] = sf.n_seeds
  df["n_excluded"] = values_KxN.shape[1] - sf.n_seeds
  df["n_positive"] = (values_KxN > 0).sum(1)
  with np.errstate(all="ignore"):
    df["mean_diff"] = np.nanmean(values_KxN, axis=1)
  df["d"] = seed_stats.paired_d(values_KxN)
  df["p"] = sf.p
  df["p_fdr"] = seed_stats.fdr(sf.p)
  df["p_floor"] = sf.p_floor
  df["floored"] = sf.floored
  df["alternative"] = alternative
  df["method"] = sf.method
  extra = [c for c in df.columns if c not in COLUMNS]
  return df[COLUMNS + extra]


def vs_untrained(per_seed, alternative="two-sided", n_mc=seed_stats.N_MC):
  last = tables.last_epoch(per_seed)
  base = tables.baseline_rule(per_seed)
  specs = [(r, last, base, 0, roi) for roi in dict.fromkeys(per_seed.roi) for r in tables.trained_rules(per_seed)]
  return _comparisons(per_seed, "vs_untrained", specs, alternative, n_mc)


def between_rules(per_seed, alternative="two-sided", n_mc=seed_stats.N_MC, reference=REFERENCE):
  """Every pair of trained rules at the last milestone, in table order, except that `reference` (backprop) is always
  rule_b, so that `vs_backprop` is a view of these rows."""
  last = tables.last_epoch(per_seed)
  rules = tables.trained_rules(per_seed)
  rules = [r for r in rules if r != reference] + [r for r in rules if r == reference]
  pairs = list(itertools.combinations(rules, 2))
  specs = [(a, last, b, last, roi) for roi in dict.fromkeys(per_seed.roi) for a, b in pairs]
  return _comparisons(per_seed, "between_rules", specs, alternative, n_mc)


def epoch1_vs_0(per_seed, alternative="two-sided", n_mc=seed_stats.N_MC):
  specs = []
  for rule in tables.trained_rules(per_seed):
    e1 = int(min(e for e in set(per_seed.loc[per_seed.rule == rule, "epoch"]) if e > 0))
    specs += [(rule, e1, rule, 0, roi) for roi in dict.fromkeys(per_seed.roi)]
  return _comparisons(per_seed, "epoch1_vs_0", specs, alternative, n_mc)


def vs_backprop(between: pd.DataFrame, reference=REFERENCE) -> pd.DataFrame:
  """Each other trained rule vs backprop at the last milestone (paper B 1a): the `between_rules` rows with
  rule_b = `reference`, unchanged (same test, same p, same p_fdr from the between_rules family)."""
  if not len(between):
    return between.copy()
  return between[between.rule_b == reference].reset_index(drop=True)


def _spearman(x, y):
  ok = np.isfinite(y)
  if ok.sum() < 2 or np.ptp(y[ok]) == 0:
    return np.nan
  return float(sps.spearmanr(x[ok], y[ok])[0])


def trend_epochs(per_seed) -> dict[str, list[int]]:
  """Milestones ≥ 1 of each trained rule (a trend is tested only with at least `MIN_TREND_EPOCHS` of them)."""
  return {
    rule: sorted(int(e) for e in set(per_seed.loc[per_seed.rule == rule, "epoch"]) if e >= 1)
    for rule in tables.trained_rules(per_seed)
  }


def trend(per_seed, alternative="two-sided", n_mc=seed_stats.N_MC):
  """Monotone trend over epochs ≥ 1: per-seed Spearman(epoch, ρ_seed), sign-flip tested over seeds against 0.

  Needs at least `MIN_TREND_EPOCHS` (3) milestones ≥ 1: with two, every per-seed Spearman is ±1 (or undefined), a
  test of "which epoch is higher", not of a trend; such rules get no row.
  """
  seeds = _seeds(per_seed)
  rows, values = [], []
  for rule, epochs in trend_epochs(per_seed).items():
    if len(epochs) < MIN_TREND_EPOCHS:
      continue
    x = np.asarray(epochs, np.float64)
    for roi in dict.fromkeys(per_seed.roi):
      rho_ExN = np.stack([tables.seed_vector(per_seed, rule, e, roi, seeds) for e in epochs])
      values.append([_spearman(x, rho_ExN[:, i]) for i in range(len(seeds))])
      rows.append(
        dict(
          family="trend",
          rule_a=rule,
          rule_b="",
          roi=roi,
          layer=per_seed.loc[per_seed.roi == roi, "layer"].iloc[0],
          epoch_a=epochs[0],
          epoch_b=epochs[-1],
          statistic="per-seed Spearman(epoch, rho), epochs >= 1",
          n_epochs=len(epochs),
          rho_seed_mean_trend=_spearman(x, np.nanmean(rho_ExN, axis=1)),
        )
      )
  return _finish(rows, np.asarray(values, np.float64).reshape(len(rows), len(seeds)), alternative, n_mc)


def all_families(
  per_seed: pd.DataFrame, alternative: str = "two-sided", n_mc: int = seed_stats.N_MC
) -> dict[str, pd.DataFrame]:
  """Every family, with the joint BH adjustment over the training-dynamics families in `p_fdr_dynamics`.

  `alternative` applies to every family ('two-sided' unless a direction was fixed before looking at the data);
  `n_mc` is the Monte Carlo sample size used beyond 20 seeds (floor 1/(1 + n_mc)). `vs_backprop` is a view of
  `between_rules` (see the module docstring).
  """
  kw = dict(alternative=alternative, n_mc=n_mc)
  between = between_rules(per_seed, **kw)
  out = {
    "vs_untrained": vs_untrained(per_seed, **kw),
    "between_rules": between,
    "epoch1_vs_0": epoch1_vs_0(per_seed, **kw),
    "vs_backprop": vs_backprop(between),
    "trend": trend(per_seed, **kw),
  }
  dyn = [out[f] for f in DYNAMICS if len(out[f])]
  p_all = seed_stats.fdr(np.concatenate([d["p"].to_numpy(np.float64) for d in dyn])) if dyn else np.array([])
  start = 0
  for f in FAMILIES:
    df = out[f]
    if f in DYNAMICS:
      df["p_fdr_dynamics"] = p_all[start : start + len(df)] if len(df) else []
      start += len(df)
  return out
