"""Paired stimulus-bootstrap differences between conditions (PROTOCOL §3.6), from the draws behind bootstrap.csv.

Every row of `results/bootstrap.csv` comes with B draws θ*_b (seed- and subject-mean ρ in resample b), and every
condition is scored on the same B stimulus resamples (`leut.scoring.stimulus_stats.bootstrap_draws`). A contrast
between two conditions a and b of the same ROI, layer, resolution, arm and pair set is therefore paired draw by draw:
d_b = θ*_{a,b} − θ*_{b,b}. `leut.evaluate` writes

  results/bootstrap_draws.npz        the draws (`draws_CxB`, float64) and the key columns of bootstrap.csv's rows
  results/bootstrap_differences.csv  contrast, rule_a, epoch_a, rule_b, epoch_b, roi, layer, resolution, arm, pairs,
                                     n_boot, n_undefined, rho_a, rho_b, diff, ci_lo, ci_hi, p, p_fdr

with contrasts
  vs_untrained       each trained rule at each epoch > 0 minus the untrained network (the baseline rule at epoch 0;
                     every rule's epoch 0 is that same network);
  between_rules      each pair of trained rules at a shared epoch > 0 (rule_a before rule_b in config order);
  vs_previous_epoch  each trained rule at a milestone minus itself at the previous bootstrapped milestone > 0 (the step
                     from epoch 0 is the vs_untrained row; needs `eval.stats_epochs='all'` to exist).
diff = rho_a − rho_b (all stimuli); ci_lo/ci_hi the 95% percentile interval of d; p the two-sided bootstrap p
(2 min(#{d ≤ 0}, #{d ≥ 0}) + 1)/(B + 1), both over the draws where d is defined (n_undefined counts the others: a
draw undefined for either condition; the CI is NaN with fewer than 40 defined draws); p_fdr BH-adjusted within each
contrast and evaluation condition: one BH family per (contrast, resolution, arm, pairs). A seed with constant or
non-finite features (a diverged network) is left out of its condition's seed mean (see
`stimulus_stats.bootstrap_draws`); its contrasts are then still paired over stimuli, not over seeds.
"""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import jax
import numpy as np
import pandas as pd

from leut import rsa

KEY_COLUMNS = ["rule", "epoch", "step", "layer", "roi", "resolution", "arm", "pairs"]
CONDITION = ["roi", "layer", "resolution", "arm", "pairs"]
DIFFERENCE_COLUMNS = [
  "contrast",
  "rule_a",
  "epoch_a",
  "rule_b",
  "epoch_b",
  "roi",
  "layer",
  "resolution",
  "arm",
  "pairs",
  "n_boot",
  "n_undefined",
  "rho_a",
  "rho_b",
  "diff",
  "ci_lo",
  "ci_hi",
  "p",
  "p_fdr",
]
CONTRASTS = ("vs_untrained", "between_rules", "vs_previous_epoch")
UNTRAINED = "untrained"


def save_draws(path, boot: pd.DataFrame, draws_CxB: np.ndarray) -> None:
  """Write the draws of `boot`'s rows (same order) and their key columns to a compressed `.npz`."""
  keys = {c: np.asarray(boot[c].to_list()) for c in KEY_COLUMNS}  # str columns as fixed-width unicode, no pickle
  np.savez_compressed(path, draws_CxB=np.asarray(draws_CxB, np.float64), **keys)


def load_draws(path) -> tuple[pd.DataFrame, np.ndarray]:
  """`(keys, draws_CxB)` as written by `save_draws`; row c of `keys` describes draws_CxB[c]."""
  with np.load(Path(path), allow_pickle=False) as z:
    return pd.DataFrame({c: z[c] for c in KEY_COLUMNS}), z["draws_CxB"]


def difference_stats(draws_a_KxB, draws_b_KxB, level: float = 0.95):
  """Paired bootstrap differences d_b = a_b − b_b per row: `(lo_K, hi_K, p_K, n_undefined_K)`, in float64.

  lo, hi: percentile interval (q_{(1-level)/2}, q_{(1+level)/2}) of d (`rsa.percentile_ci`; Efron & Tibshirani 1993,
  ch. 13); p: two-sided bootstrap p = (2 min(#{d_b ≤ 0}, #{d_b ≥ 0}) + 1) / (B + 1) (`rsa.bootstrap_p`; paper A v4,
  PROTOCOL §3.6). Both use the draws where d is defined (NaN draws are undefined resamples, counted in
  n_undefined); the interval is NaN below `rsa.min_defined_draws(level)` defined draws, p when none is defined.
  Identical conditions give d ≡ 0, so lo = hi = 0 and p = 1.
  """
  d_KxB = np.asarray(draws_a_KxB, np.float64) - np.asarray(draws_b_KxB, np.float64)
  with jax.enable_x64(True):  # the quantiles and counts in float64, as NumPy would compute them
    lo, hi = (np.asarray(x, np.float64) for x in rsa.percentile_ci(d_KxB, level))
    p = np.asarray(rsa.bootstrap_p(d_KxB), np.float64)
  return lo, hi, p, np.sum(~np.isfinite(d_KxB), axis=-1)


def contrasts(keys: pd.DataFrame, rules=None) -> list[tuple[str, int, int]]:
  """`(contrast, a, b)` row pairs of `keys` (KEY_COLUMNS rows) in the same condition (see module docstring).

  `rules` gives the order of rules (default: first appearance); the baseline is `untrained` if present, else the
  first rule's epoch 0 (the same network).
  """
  order = list(rules) if rules is not None else list(dict.fromkeys(keys["rule"]))
  order += [r for r in dict.fromkeys(keys["rule"]) if r not in order]
  at = {}
  for i, k in enumerate(keys[["rule", "epoch"] + CONDITION].itertuples(index=False)):
    at[(k[0], int(k[1]), tuple(k[2:]))] = i
  conds = list(dict.fromkeys(c for _, _, c in at))
  present = [r for r in order if any(k[0] == r for k in at)]
  base = UNTRAINED if UNTRAINED in present else (present[0] if present else None)
  epochs = {r: sorted({e for (q, e, _) in at if q == r and e > 0}) for r in present}
  trained = [r for r in present if epochs[r]]
  out = []
  for c in conds:
    b0 = at.get((base, 0, c))
    for r in trained:
      for e in epochs[r]:
        if b0 is not None and (r, e, c) in at:
          out.append(("vs_untrained", at[(r, e, c)], b0))
    for r1, r2 in combinations(trained, 2):
      for e in epochs[r1]:
        if (r1, e, c) in at and (r2, e, c) in at:
          out.append(("between_rules", at[(r1, e, c)], at[(r2, e, c)]))
    for r in trained:
      steps = [e for e in epochs[r] if (r, e, c) in at]
      for prev, e in zip(steps, steps[1:]):
        out.append(("vs_previous_epoch", at[(r, e, c)], at[(r, prev, c)]))
  return out


def difference_table(
  boot: pd.DataFrame, draws_CxB: np.ndarray, *, rules=None, level: float = 0.95, chunk: int = 1024
) -> pd.DataFrame:
  """`DIFFERENCE_COLUMNS` rows for every contrast of `boot` (bootstrap.csv rows) with their draws `draws_CxB`.

  Differences are formed `chunk` contrasts at a time, so memory stays at chunk × B floats whatever the row count.
  """
  boot = boot.reset_index(drop=True)
  draws_CxB = np.asarray(draws_CxB, np.float64)
  if len(boot) != draws_CxB.shape[0]:
    raise ValueError(f"{len(boot)} bootstrap rows but {draws_CxB.shape[0]} draw vectors")
  pairs = contrasts(boot, rules)
  if not pairs:
    return pd.DataFrame(columns=DIFFERENCE_COLUMNS)
  kind = [k for k, _, _ in pairs]
  a_K = np.array([a for _, a, _ in pairs])
  b_K = np.array([b for _, _, b in pairs])
  lo, hi, p, n_undefined = (
    np.concatenate(x)
    for x in zip(
      *(
        difference_stats(draws_CxB[a_K[i : i + chunk]], draws_CxB[b_K[i : i + chunk]], level)
        for i in range(0, len(pairs), chunk)
      )
    )
  )
  A, B = boot.loc[a_K].reset_index(drop=True), boot.loc[b_K].reset_index(drop=True)
  out = pd.DataFrame(
    dict(
      contrast=kind,
      rule_a=A.rule,
      epoch_a=A.epoch,
      rule_b=B.rule,
      epoch_b=B.epoch,
      **{c: A[c] for c in CONDITION},
      n_boot=draws_CxB.shape[1],
      n_undefined=n_undefined,
      rho_a=A.rho,
      rho_b=B.rho,
      diff=A.rho.to_numpy() - B.rho.to_numpy(),
      ci_lo=lo,
      ci_hi=hi,
      p=p,
    )
  )
  out["p_fdr"] = np.nan
  for _, g in out.groupby(["contrast", "resolution", "arm", "pairs"], sort=False):
    ok = g.index[g.p.notna()]
    if len(ok):
      out.loc[ok, "p_fdr"] = np.asarray(rsa.fdr_bh(out.loc[ok, "p"].to_numpy()), np.float64)
  return out[DIFFERENCE_COLUMNS]
