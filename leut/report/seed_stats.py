"""Seed-level statistics for the report: paired sign-flip tests with their attainable floor, FDR, paired d, t CIs.

The unit of replication is the seed: every rule starts from the same initialisation for a given seed, so rule
comparisons are paired by seed (PROTOCOL §3.7, paper B). For per-seed differences d_1..d_N:

    T = mean_i d_i;  p = #{s in {-1,+1}^N : T(s) >= T} / 2^N            one-sided ("greater")
                     #{s : |T(s)| >= |T|} / 2^N                          two-sided
    smallest attainable p (the floor) = 1 / 2^N (one-sided), 2 / 2^N (two-sided); e.g. 1/32 = 0.031 with 5 seeds.

Beyond 2^20 assignments `leut.rsa.sign_flip_test` switches to Monte Carlo with p = (1 + #extreme) / (1 + n_mc);
the floor is then 1 / (1 + n_mc), not 2^-N. A p-value at its floor says "every seed agreed", not "p is tiny".
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import numpy as np
import pandas as pd
from scipy import stats as sps

from leut import rsa
from leut.rsa.sign_flip import EXACT_MAX_N

N_MC = 100_000
ALTERNATIVES = ("two-sided", "greater", "less")


class SignFlip(NamedTuple):
  p: np.ndarray  # K     p-values
  p_floor: np.ndarray  # K     smallest attainable p for each test's seed count and method
  floored: np.ndarray  # K     p at its floor (all seeds agree)
  n_seeds: np.ndarray  # K     seeds with a finite difference
  method: np.ndarray  # K     'exact' | 'monte_carlo' | 'none' (fewer than 1 finite seed)


def p_floor(n_seeds: int, alternative: str = "two-sided", *, n_mc: int = N_MC, exact_max_n: int = EXACT_MAX_N) -> float:
  """Smallest p a sign-flip test over `n_seeds` can return: 2^-N (x2 two-sided) exact, 1/(1+n_mc) Monte Carlo."""
  if n_seeds < 1:
    return float("nan")
  if n_seeds > exact_max_n:
    return 1.0 / (1.0 + n_mc)
  return (2.0 if alternative == "two-sided" else 1.0) / 2.0**n_seeds


def sign_flip(diffs_KxN: np.ndarray, alternative: str = "two-sided", *, n_mc: int = N_MC, seed: int = 0) -> SignFlip:
  """Paired sign-flip tests of K rows of per-seed differences (NaN = missing seed, dropped per row).

  Rows are grouped by their count of finite seeds and each group goes through `leut.rsa.sign_flip_test` in one
  call; the Monte Carlo key (N > 20) is `jax.random.key(seed)` folded with N, so reports are reproducible.
  """
  if alternative not in ALTERNATIVES:
    raise ValueError(f"alternative must be one of {ALTERNATIVES}, not {alternative!r}")
  d = np.atleast_2d(np.asarray(diffs_KxN, np.float64))
  K = d.shape[0]
  finite = np.isfinite(d)
  n_K = finite.sum(1)
  p = np.full(K, np.nan)
  floor = np.full(K, np.nan)
  method = np.full(K, "none", dtype=object)
  for n, rows, sub in _by_count(d, finite, n_K):
    exact = n <= EXACT_MAX_N
    key = None if exact else jax.random.fold_in(jax.random.key(seed), n)
    p[rows] = np.asarray(rsa.sign_flip_test(_pad_rows(sub), alternative, key=key, n_mc=n_mc), np.float64)[: len(rows)]
    floor[rows] = p_floor(n, alternative, n_mc=n_mc)
    method[rows] = "exact" if exact else "monte_carlo"
  floored = np.isfinite(p) & (p <= floor * (1 + 1e-6))
  return SignFlip(p, floor, floored, n_K, method)


_fdr_bh_jit = jax.jit(rsa.fdr_bh)
_cohens_d_jit = jax.jit(rsa.cohens_d)


def _by_count(d_KxN, finite_KxN, n_K):
  """(n, row indices, n-column matrix of their finite values) for each count n >= 1 of finite seeds."""
  for n in sorted(set(n_K.tolist()) - {0}):
    rows = np.flatnonzero(n_K == n)
    yield n, rows, np.stack([d_KxN[r][finite_KxN[r]] for r in rows])


def _pad_rows(x_KxN):
  """Pad K up to a power of two (>= 8) with zero rows, so that jit compiles a handful of shapes per report."""
  k = max(8, 1 << (x_KxN.shape[0] - 1).bit_length())
  return np.concatenate([x_KxN, np.zeros((k - x_KxN.shape[0], x_KxN.shape[1]), x_KxN.dtype)])


def paired_d(diffs_KxN: np.ndarray) -> np.ndarray:
  """Paired Cohen's d per row, d = mean(diff) / SD(diff, ddof=1) over finite seeds (PROTOCOL §3.9, paper B).

  Not defined (NaN, printed "not defined" in summary.md): zero spread (every seed's difference equal) or fewer than
  2 seeds (`rsa.cohens_d`).
  """
  d = np.atleast_2d(np.asarray(diffs_KxN, np.float64))
  finite = np.isfinite(d)
  n_K = finite.sum(1)
  out = np.full(d.shape[0], np.nan)
  for n, rows, sub in _by_count(d, finite, n_K):
    if n >= 2:
      with np.errstate(all="ignore"):
        out[rows] = np.asarray(_cohens_d_jit(_pad_rows(sub)), np.float64)[: len(rows)]
  return out


def fdr(p: np.ndarray) -> np.ndarray:
  """Benjamini–Hochberg adjusted p over one family (NaN entries stay NaN and do not count), via `leut.rsa.fdr_bh`."""
  p = np.asarray(p, np.float64)
  out = np.full(p.shape, np.nan)
  ok = np.isfinite(p)
  if ok.any():
    out[ok] = np.asarray(_fdr_bh_jit(p[ok]), np.float64)
  return out


def t_interval(values, level: float = 0.95) -> tuple[float, float, float, float, int]:
  """(mean, sd, lo, hi, n) with the Student-t interval mean ± t_{(1+level)/2, n-1} · sd / √n over finite values."""
  v = np.asarray(values, np.float64)
  v = v[np.isfinite(v)]
  n = len(v)
  if n == 0:
    return (math.nan,) * 4 + (0,)
  m = float(v.mean())
  if n < 2:
    return m, math.nan, math.nan, math.nan, n
  sd = float(v.std(ddof=1))
  half = float(sps.t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n)
  return m, sd, m - half, m + half, n


def summarise(df: pd.DataFrame, keys: list[str], value: str) -> pd.DataFrame:
  """Mean, SD (ddof=1), 95% t-interval (ci_lo, ci_hi) and n over the rows (seeds) of each `keys` group, and
  n_excluded: the rows left out because their value is NaN (a diverged seed, constant features; see rsa.csv's note).
  """
  rows = []
  for k, g in df.groupby(keys, sort=False):
    m, sd, lo, hi, n = t_interval(g[value])
    rows.append(
      dict(
        zip(keys, k if isinstance(k, tuple) else (k,)), mean=m, sd=sd, ci_lo=lo, ci_hi=hi, n=n, n_excluded=len(g) - n
      )
    )
  return pd.DataFrame(rows, columns=keys + ["mean", "sd", "ci_lo", "ci_hi", "n", "n_excluded"])
