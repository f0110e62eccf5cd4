"""Two-level bootstrap of the headline contrasts over seeds × stimuli (both sources of variance).

The seed-level sign-flip tests (`leut.report.families`) hold the stimuli fixed and generalise over seeds; the
stimulus bootstrap (`leut.scoring.bootstrap_differences`) averages the seeds inside each draw and generalises over
stimuli. The two-level bootstrap resamples both: in draw b the seeds are drawn with replacement (σ_b(1..K) from the K
seeds defined in both conditions) and the stimuli with replacement (the stimulus bootstrap's resample b, shared by
every seed, rule and epoch), so it generalises over seeds and stimuli at once. It reuses the stimulus bootstrap's
per-seed draws (`stimulus_stats.bootstrap_draws(..., seed_draws=...)`, the jitted `rsa.bootstrap` kernel), so no
RDM is resampled twice. `leut.evaluate` writes

  results/two_level_bootstrap.csv   contrast, rule_a, epoch_a, rule_b, epoch_b, roi, layer, resolution, arm, pairs,
                                    n_seeds, n_boot, n_undefined, diff, ci_lo, ci_hi, p, p_fdr, generalises_over

for the contrasts of bootstrap_differences.csv (vs_untrained, between_rules, vs_previous_epoch; epoch 1 vs 0 is the
vs_untrained row at epoch 1). Seeds are paired between the two conditions (same seed = same initialisation), and
draw b uses the same seed resample σ_b for every contrast with the same K (one fixed key), so contrasts are paired
draw by draw too. diff = mean over the K seeds of the per-seed difference on all stimuli (the sign-flip test's
mean_diff); n_seeds = K; a seed undefined in either condition (NaN in rsa.csv) is not resampled. A draw in which a
resampled seed's ρ is undefined (`rsa.bootstrap`: fewer than two distinct pairs, a constant vector) is undefined and
counted in n_undefined; the CI and p use the others (the CI is NaN below `rsa.min_defined_draws()` = 40 of them).
p_fdr: BH within each contrast and evaluation condition (resolution, arm, pairs), as bootstrap_differences.csv.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from leut import rsa
from leut.scoring import bootstrap_differences

SEED = 20261130  # the key of the seed resamples (the stimulus resamples keep stimulus_stats.BOOTSTRAP_SEED)
GENERALISES_OVER = "seeds and stimuli"
COLUMNS = [
  "contrast",
  "rule_a",
  "epoch_a",
  "rule_b",
  "epoch_b",
  *bootstrap_differences.CONDITION,
  "n_seeds",
  "n_boot",
  "n_undefined",
  "diff",
  "ci_lo",
  "ci_hi",
  "p",
  "p_fdr",
  "generalises_over",
]


def seed_resample_indices(key: jax.Array, n_boot: int, n_seeds: int) -> jax.Array:
  """`BxK` int32 seed indices drawn uniformly with replacement (K = n_seeds), one row per bootstrap draw."""
  return jax.random.randint(key, (n_boot, n_seeds), 0, n_seeds, dtype=jnp.int32)


@jax.jit
def two_level_draws(per_seed_KxB: jax.Array, seed_indices_BxK: jax.Array) -> jax.Array:
  """Two-level bootstrap draws `...xB` of a seed mean from per-seed stimulus-bootstrap draws `...xKxB`:

    θ**_b = (1/K) Σ_k x_{σ_b(k), b},

  x_{n,b} the statistic of seed n on stimulus resample b (the same stimulus resample for every seed of draw b) and
  σ_b(1..K) the seeds of draw b, drawn with replacement (`seed_resample_indices`). NaN where a resampled seed's x is
  NaN (an undefined draw). This is the two-stage (cluster, then within-cluster) bootstrap of Davison & Hinkley
  (1997), Bootstrap Methods and their Application, §3.8, with stimuli crossed with seeds as in the two-factor
  bootstrap of Schütt et al. (2023), eLife 12:e82566, who show that resampling both factors without their correction
  overstates the variance somewhat (conservative intervals). With one seed it is the stimulus bootstrap; with every
  stimulus resample the identity it is a bootstrap over seeds.
  """
  x = jnp.asarray(per_seed_KxB)
  idx = jnp.asarray(seed_indices_BxK)
  B = x.shape[-1]
  picked_BxK = x[..., idx, jnp.arange(B)[:, None]]  # x[..., σ_b(k), b]
  return jnp.mean(picked_BxK, axis=-1)


_INDICES = {}


def seed_indices(n_boot: int, n_seeds: int, seed: int = SEED) -> jax.Array:
  """The `BxK` seed resamples `difference_table` uses for every contrast with K = `n_seeds` seeds (key
  `fold_in(key(seed), K)`), so contrasts with the same seeds share them draw by draw."""
  k = (n_boot, n_seeds, seed)
  if k not in _INDICES:
    _INDICES[k] = seed_resample_indices(jax.random.fold_in(jax.random.key(seed), n_seeds), n_boot, n_seeds)
  return _INDICES[k]


def difference_table(
  boot: pd.DataFrame, observed_CxN, draws_CxNxB, *, rules=None, level: float = 0.95, seed: int = SEED
) -> pd.DataFrame:
  """`COLUMNS` rows for every contrast of `boot` (bootstrap.csv rows, `bootstrap_differences.contrasts`).

  `observed_CxN`: each row's per-seed subject-mean ρ on all stimuli, `draws_CxNxB` the same in each stimulus resample
  (`stimulus_stats.bootstrap_draws(..., seed_draws=...)`; NaN rows for seeds left out of the row). CI: percentile
  interval of the two-level draws of the paired difference (`rsa.percentile_ci`, Efron & Tibshirani 1993, ch. 13);
  p: (2 min(#{d ≤ 0}, #{d ≥ 0}) + 1) / (B + 1) over the defined draws (`rsa.bootstrap_p`).
  """
  boot = boot.reset_index(drop=True)
  obs = np.asarray(observed_CxN, np.float64)
  draws = np.asarray(draws_CxNxB, np.float64)
  if not (len(boot) == obs.shape[0] == draws.shape[0]):
    raise ValueError(f"{len(boot)} bootstrap rows, {obs.shape[0]} observed and {draws.shape[0]} draw sets")
  pairs = bootstrap_differences.contrasts(boot, rules)
  rows = []
  B = draws.shape[-1]
  for kind, a, b in pairs:
    d_N = obs[a] - obs[b]
    pool = np.isfinite(d_N)
    K = int(pool.sum())
    A = boot.loc[a]
    row = dict(
      contrast=kind,
      rule_a=A.rule,
      epoch_a=A.epoch,
      rule_b=boot.loc[b, "rule"],
      epoch_b=boot.loc[b, "epoch"],
      **{c: A[c] for c in bootstrap_differences.CONDITION},
      n_seeds=K,
      n_boot=B,
      generalises_over=GENERALISES_OVER,
    )
    if K == 0:
      rows.append(dict(row, n_undefined=B, diff=np.nan, ci_lo=np.nan, ci_hi=np.nan, p=np.nan))
      continue
    d_KxB = draws[a][pool] - draws[b][pool]
    t_B = np.asarray(two_level_draws(jnp.asarray(d_KxB, jnp.float32), seed_indices(B, K, seed)), np.float64)
    with jax.enable_x64(True):  # quantiles and counts in float64, as NumPy would compute them
      lo, hi = (float(x) for x in rsa.percentile_ci(t_B, level))
      p = float(rsa.bootstrap_p(t_B))
    rows.append(
      dict(row, n_undefined=int(np.sum(~np.isfinite(t_B))), diff=float(d_N[pool].mean()), ci_lo=lo, ci_hi=hi, p=p)
    )
  out = pd.DataFrame(rows, columns=COLUMNS)
  for _, g in out.groupby(["contrast", "resolution", "arm", "pairs"], sort=False):
    ok = g.index[g.p.notna()]
    if len(ok):
      out.loc[ok, "p_fdr"] = np.asarray(rsa.fdr_bh(out.loc[ok, "p"].to_numpy()), np.float64)
  return out
