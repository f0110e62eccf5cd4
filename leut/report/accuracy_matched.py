"""Alignment at matched held-out accuracy: does a rule change ρ, or only how well the network does the task?

A rule can sit below another at V1 because its feedback differs or because it learned less; comparing rules at the
same held-out accuracy separates the two (Liu et al. 2025, arXiv 2506.06904). For one rule, seed and ROI the
milestones e_0 < … < e_K give points (a_k, ρ_k): held-out accuracy (`results/accuracy.csv`) and the headline ρ
(`tables.seed_scores`, fixed layer per ROI). The matched ρ at a target accuracy a* is linear in accuracy on the first
segment of the training path that reaches a*:

    k* = min{k : min(a_k, a_k+1) ≤ a* ≤ max(a_k, a_k+1)}
    ρ(a*) = ρ_k* + (a* − a_k*) (ρ_k*+1 − ρ_k*) / (a_k*+1 − a_k*)     (ρ_k* when a_k* = a_k*+1 = a*)

which is `np.interp(a*, a, ρ)` when accuracy rises over the milestones. It is never extrapolated: a target outside
every segment of a seed's path is not reached, and the seed's ρ(a*) is undefined (NaN). Milestones with an undefined
accuracy (non-finite logits) are left out of the path; a reached target whose bracketing ρ is NaN (a diverged seed,
constant features) leaves that seed out and counts it in `n_excluded`, as everywhere in the report.

Targets (`default_targets`): each pair of rules is compared at accuracies that every seed of both rules reaches,
[max over the two rules' seeds of their lowest accuracy, min of their highest]: `N_TARGETS` evenly spaced points
above its low end, its high end included, each rounded down to `TARGET_STEP` (0.001, the resolution of a 1,000-image
test set) so that the target summary.md prints is the one used; none when the range is empty (the summary says so).
Pairwise, so that a rule near chance does not confine every other comparison to chance-level accuracy. Given
explicitly (the same targets for every pair), a target that some seed of a rule does not reach makes that rule's row,
and every contrast with it, undefined, with a note: the seeds that do reach it are a selected subset, not a sample.

Two tidy tables:

  results/accuracy_matched.csv        rule, roi, layer, target_accuracy, mean, sd, ci_lo, ci_hi, n, n_excluded,
                                      n_reached, n_seeds, note: matched ρ over seeds (95% t-interval)
  results/tests_accuracy_matched.csv  every pair of trained rules at each of its targets and every ROI, paired by
                                      seed, with the columns of the other `tests_<family>.csv` (`families.COLUMNS`)
                                      plus target_accuracy, rho_a, rho_b, note; epoch_a/epoch_b are empty (the
                                      epochs differ per seed). One BH family over all its rows.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd

from leut.report import families, seed_stats, tables

N_TARGETS = 3
TARGET_STEP = 1e-3
FAMILY = "accuracy_matched"
STATISTIC = "rho_a - rho_b at matched held-out accuracy (linear in accuracy, first crossing)"
SUMMARY_COLUMNS = ["rule", "roi", "layer", "target_accuracy"] + tables.STAT_COLUMNS + ["n_reached", "n_seeds", "note"]


def first_crossing(acc_E: np.ndarray, rho_E: np.ndarray, targets_T: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """ρ at each target accuracy a*, linear in accuracy on the first milestone segment k that reaches it:

      ρ(a*) = ρ_k + (a* − a_k) (ρ_k+1 − ρ_k) / (a_k+1 − a_k),   k = min{k : a* between a_k and a_k+1}

  never extrapolated (module docstring; rules compared at matched accuracy: Liu et al. 2025, arXiv 2506.06904).

  Args:
    acc_E: held-out accuracy at each milestone, in epoch order (non-finite entries are left out of the path).
    rho_E: ρ at the same milestones.
    targets_T: target accuracies.

  Returns:
    (rho_T, reached_T): the matched ρ (NaN where not reached, or where a bracketing ρ is NaN) and whether the path
    reaches each target.
  """
  acc = np.asarray(acc_E, np.float64)
  rho = np.asarray(rho_E, np.float64)
  targets = np.atleast_1d(np.asarray(targets_T, np.float64))
  keep = np.isfinite(acc)
  acc, rho = acc[keep], rho[keep]
  if len(acc) == 0:
    return np.full(targets.shape, np.nan), np.zeros(targets.shape, bool)
  if len(acc) == 1:  # one milestone: a path of one point reaches only its own accuracy
    acc, rho = np.repeat(acc, 2), np.repeat(rho, 2)
  a0_S, a1_S, r0_S, r1_S = acc[:-1], acc[1:], rho[:-1], rho[1:]
  brackets_TxS = (np.minimum(a0_S, a1_S) <= targets[:, None]) & (targets[:, None] <= np.maximum(a0_S, a1_S))
  reached_T = brackets_TxS.any(1)
  k_T = brackets_TxS.argmax(1)
  span_T = a1_S[k_T] - a0_S[k_T]
  with np.errstate(invalid="ignore", divide="ignore"):
    frac_T = np.where(span_T != 0, (targets - a0_S[k_T]) / span_T, 0.0)
  rho_T = r0_S[k_T] + frac_T * (r1_S[k_T] - r0_S[k_T])
  on_a0, on_a1 = targets == a0_S[k_T], targets == a1_S[k_T]
  rho_T = np.where(on_a0, r0_S[k_T], np.where(on_a1, r1_S[k_T], rho_T))  # on a milestone: its own ρ
  return np.where(reached_T, rho_T, np.nan), reached_T


def _paths(acc: pd.DataFrame, rules) -> dict[tuple[str, int], pd.Series]:
  """(rule, seed) -> accuracy per epoch, in epoch order."""
  sub = acc[acc.rule.isin(rules)].sort_values("epoch")
  return {
    (r, int(s)): g.set_index("epoch")["accuracy"].astype(np.float64) for (r, s), g in sub.groupby(["rule", "seed"])
  }


def default_targets(acc: pd.DataFrame, rules, n: int = N_TARGETS) -> np.ndarray:
  """`n` target accuracies that every seed of every rule in `rules` reaches (module docstring); empty when none."""
  ranges = [(p.min(), p.max()) for p in _paths(acc, rules).values() if p.notna().any()]
  if not ranges:
    return np.array([])
  lo, hi = max(r[0] for r in ranges), min(r[1] for r in ranges)
  if not hi > lo:
    return np.array([])
  per_unit = round(1 / TARGET_STEP)
  targets = np.unique(np.floor(np.linspace(lo, hi, n + 1)[1:] * per_unit + 1e-9)) / per_unit  # k / 1000 exactly
  return targets[(targets >= lo) & (targets <= hi)]


def matched_scores(per_seed: pd.DataFrame, acc: pd.DataFrame, targets_by_rule: dict[str, np.ndarray]) -> pd.DataFrame:
  """Per rule, ROI, layer, seed and target of that rule: rho (matched ρ, NaN when undefined) and reached."""
  paths = _paths(acc, list(targets_by_rule))
  rows = []
  for (rule, roi, layer, seed), g in per_seed[per_seed.rule.isin(list(targets_by_rule))].groupby(
    ["rule", "roi", "layer", "seed"], sort=False
  ):
    targets = np.atleast_1d(np.asarray(targets_by_rule[rule], np.float64))
    path = paths.get((rule, int(seed)), pd.Series(dtype=np.float64))
    rho_E = g.set_index("epoch")["rho"].reindex(path.index).to_numpy(np.float64)
    rho_T, reached_T = first_crossing(path.to_numpy(), rho_E, targets)
    rows += [
      dict(rule=rule, roi=roi, layer=layer, seed=int(seed), target_accuracy=t, rho=r, reached=bool(ok))
      for t, r, ok in zip(targets, rho_T, reached_T)
    ]
  return pd.DataFrame(rows, columns=["rule", "roi", "layer", "seed", "target_accuracy", "rho", "reached"])


def _not_reached(rule: str, reached_by_seed: pd.Series) -> str:
  """The note of a target some seed of `rule` does not reach ('' when every seed reaches it)."""
  ok = np.equal(reached_by_seed.to_numpy(object), True)  # a missing seed (NaN) has not reached it
  seeds = ";".join(str(int(s)) for s in reached_by_seed.index[~ok])
  return f"not reached by seeds {seeds} of {rule} (no extrapolation)" if seeds else ""


def summarise(matched: pd.DataFrame) -> pd.DataFrame:
  """Matched ρ per rule, ROI and target over seeds; undefined (NaN, with a note) unless every seed reaches it."""
  rows = []
  for (rule, roi, layer, target), g in matched.groupby(["rule", "roi", "layer", "target_accuracy"], sort=False):
    note = _not_reached(rule, g.set_index("seed")["reached"])
    m, sd, lo, hi, n = seed_stats.t_interval(g["rho"] if not note else [])
    rows.append(
      dict(
        rule=rule,
        roi=roi,
        layer=layer,
        target_accuracy=target,
        mean=m,
        sd=sd,
        ci_lo=lo,
        ci_hi=hi,
        n=n,
        n_excluded=len(g) - n if not note else 0,
        n_reached=int(g.reached.sum()),
        n_seeds=len(g),
        note=note,
      )
    )
  return pd.DataFrame(rows, columns=SUMMARY_COLUMNS).sort_values(["roi", "rule", "target_accuracy"], kind="stable")


def contrasts(
  matched: pd.DataFrame,
  pair_targets: dict[tuple[str, str], np.ndarray],
  alternative: str = "two-sided",
  n_mc: int = seed_stats.N_MC,
) -> pd.DataFrame:
  """Each pair (rule_a, rule_b) at each of its targets and every ROI: per-seed ρ_a(a*) − ρ_b(a*), the paired
  sign-flip test, paired d and one BH family over all rows, as `families.between_rules` (same columns)."""
  seeds = sorted(set(matched.seed))
  by = {k: g.set_index("seed").reindex(seeds) for k, g in matched.groupby(["rule", "roi", "target_accuracy"])}
  rows, diffs = [], []
  for roi in dict.fromkeys(matched.roi):
    for (a, b), targets in pair_targets.items():
      for target in targets:
        ga, gb = by[(a, roi, target)], by[(b, roi, target)]
        note = "; ".join(n for n in (_not_reached(a, ga["reached"]), _not_reached(b, gb["reached"])) if n)
        d = ga["rho"].to_numpy(np.float64) - gb["rho"].to_numpy(np.float64)
        diffs.append(np.full(len(seeds), np.nan) if note else d)
        rows.append(
          dict(
            family=FAMILY,
            rule_a=a,
            rule_b=b,
            roi=roi,
            layer=ga["layer"].dropna().iloc[0],
            epoch_a=np.nan,
            epoch_b=np.nan,
            statistic=STATISTIC,
            target_accuracy=target,
            rho_a=np.nan if note else np.nanmean(ga["rho"]),
            rho_b=np.nan if note else np.nanmean(gb["rho"]),
            note=note,
          )
        )
  if not rows:
    return pd.DataFrame(columns=families.COLUMNS + ["target_accuracy", "rho_a", "rho_b", "note"])
  with warnings.catch_warnings():  # an undefined row is all NaN: its mean_diff is NaN, not a warning
    warnings.simplefilter("ignore", RuntimeWarning)
    return families._finish(rows, np.asarray(diffs, np.float64).reshape(len(rows), len(seeds)), alternative, n_mc)


def accuracy_matched(
  per_seed: pd.DataFrame,
  acc: pd.DataFrame,
  *,
  targets=None,
  rules=None,
  alternative: str = "two-sided",
  n_mc: int = seed_stats.N_MC,
  reference: str = families.REFERENCE,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[tuple[str, str], np.ndarray]]:
  """(results/accuracy_matched.csv, results/tests_accuracy_matched.csv, each pair's targets).

  `rules`: the trained rules compared (default: every rule with a milestone after epoch 0), every pair of them in
  table order with `reference` (backprop) always rule_b, as in `families.between_rules`. `targets`: the same
  accuracies for every pair (a rule or pair that does not reach one is undefined there, with a note); default: each
  pair at `default_targets` of its two rules, and each rule at the targets of its pairs.
  """
  rules = list(rules) if rules is not None else tables.trained_rules(per_seed)
  order = [r for r in rules if r != reference] + [r for r in rules if r == reference]
  pairs = list(itertools.combinations(order, 2))
  if targets is None:
    pair_targets = {(a, b): default_targets(acc, [a, b]) for a, b in pairs}
    targets_by_rule = {
      r: np.unique(np.concatenate([np.array([])] + [t for p, t in pair_targets.items() if r in p])) for r in order
    }
  else:
    targets = np.atleast_1d(np.asarray(targets, np.float64))
    pair_targets = {p: targets for p in pairs}
    targets_by_rule = {r: targets for r in order}
  matched = matched_scores(per_seed, acc, targets_by_rule)
  return summarise(matched), contrasts(matched, pair_targets, alternative, n_mc), pair_targets


def milestone_points(stats: pd.DataFrame, acc_stats: pd.DataFrame) -> pd.DataFrame:
  """Seed-mean ρ (results/alignment.csv) beside seed-mean accuracy (results/accuracy_summary.csv) per rule, ROI and
  milestone, with both 95% t-intervals: the points of `figures.alignment_vs_accuracy`."""
  acc = acc_stats[["rule", "epoch", "mean", "ci_lo", "ci_hi"]].rename(
    columns={"mean": "acc_mean", "ci_lo": "acc_ci_lo", "ci_hi": "acc_ci_hi"}
  )
  return stats.merge(acc, on=["rule", "epoch"], how="inner").sort_values(["roi", "rule", "epoch"], kind="stable")
