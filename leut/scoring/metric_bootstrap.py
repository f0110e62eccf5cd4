"""Stimulus-level statistics of CKA and encoding scores: the RSA bootstrap's scheme on the response metrics.

RSA's stimulus bootstrap (`leut.scoring.stimulus_stats.bootstrap_draws`) resamples stimuli with replacement and
averages seeds and subjects inside each draw. The same is done here for linear CKA (`cka_scores`) and the encoding
score (`encoding_scores`), at each ROI's headline layer and the `eval.stats_epochs` milestones, with the very same
resamples (key `stimulus_stats.BOOTSTRAP_SEED`), so every rule, epoch, ROI and metric is paired draw by draw:

  CKA        draw b takes the centred Gram matrices of the resampled features, K_b = H (Kc)[i_b, i_b] H (those of
             X[i_b]: centring over stimuli commutes with taking rows), sets the entries between two copies of one
             stimulus to 0, as the diagonal, and computes CKA(K_b, L_b) with `rsa.cka`'s estimators. Copies are
             self-pairs, as in the RSA bootstrap (self-pairs dropped): kept as ordinary pairs, they act like extra
             diagonal terms and push every draw of either estimator upward, so that at few stimuli the percentile
             interval can miss the all-stimulus CKA (`tests/scoring/test_metric_bootstrap.py` shows both). Every
             term is computed in closed form from the all-stimulus Gram matrices and the draw's counts
             (`cka_draws`), one S x S matrix-vector product per seed, subject and draw.
  encoding   the fitted encoding models are kept (networks, penalties and ridge weights as on all stimuli) and the
             held-out test stimuli are resampled: in draw b, each fold's held-out Pearson r is computed with every
             test stimulus weighted by how often it was drawn (= Pearson r of the expanded resample), r is averaged
             over folds, divided by each neuroid's ceiling and summarised by the median over reliable neuroids, as
             the score (`encoding_scores`). It generalises over test stimuli, not over training sets.

A draw in which some seed's or subject's score is undefined (fewer than two distinct stimuli drawn in a fold, a
constant resample) is undefined and counted in `n_undefined`; the CI uses the others (NaN below
`rsa.min_defined_draws()`). A seed whose all-stimulus score is NaN (non-finite features, a diverged network, an
undefined CKA) is left out of its row's seed mean. `leut.evaluate` writes, per metric M in (cka, encoding):

  results/M_bootstrap.csv              rule, epoch, step, layer, roi, resolution, arm, [estimator,] readout, n_boot,
                                       n_undefined, <value>, ci_lo, ci_hi  (value: cka or score)
  results/M_bootstrap_differences.csv  paired stimulus-bootstrap differences (`bootstrap_differences`; value_a,
                                       value_b for rho_a, rho_b)
  results/M_two_level_bootstrap.csv    seeds and stimuli resampled together (`two_level_bootstrap`)

with one BH family per contrast, evaluation condition and (CKA) estimator.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from leut import encoding, rsa
from leut.data.responses import ResponseData
from leut.rsa.precision import HIGHEST
from leut.scoring import bootstrap_differences, cka_scores, two_level_bootstrap
from leut.scoring.stimulus_stats import BOOTSTRAP_SEED

VALUE = {"cka": "cka", "encoding": "score"}
MIN_RELATIVE_VARIANCE = 1e-12  # a fold's resampled variance below this fraction of its sum of squares is 0 (float64)
TABLE_KINDS = ("bootstrap", "bootstrap_differences", "two_level_bootstrap")
TARGET_CHUNK = 1024  # encoding targets resampled at a time (the last chunk zero-padded to the same width)


def _moments(w_DxS, gram_XxSxS):
  """α = G w / n, γ = w'Gw / n² and kd_s = G_ss − 2α_s + γ per resample and Gram matrix: `DxXxS`, `DxX`, `DxXxS`."""
  n = jnp.sum(w_DxS, 1)
  alpha = jnp.einsum("ds,xst->dxt", w_DxS, gram_XxSxS, precision=HIGHEST) / n[:, None, None]
  gamma = jnp.einsum("ds,dxs->dx", w_DxS, alpha, precision=HIGHEST) / n[:, None]
  diag = jnp.diagonal(gram_XxSxS, axis1=1, axis2=2)[None] - 2 * alpha + gamma[..., None]
  return alpha, gamma, diag


def _pair_sums(w_DxS, a0_PxSxS, b0_PxSxS, mom_a, mom_b):
  """For P aligned pairs of centred Gram matrices, per resample: (A, Σw²·kd·ld, Σw·kd·ld, Σw³·kd·ld), each `DxP`,
  with A = Σ_st w_s w_t k_st l_st = w'(K0∘L0)w − 2n Σ_s w_s α_s β_s + n²γδ (module docstring)."""
  (alpha, gamma, kd), (beta, delta, ld) = mom_a, mom_b
  n = jnp.sum(w_DxS, 1)[:, None]
  wm_DxPxS = jnp.einsum("ds,pst->dpt", w_DxS, a0_PxSxS * b0_PxSxS, precision=HIGHEST)
  q = jnp.einsum("dpt,dt->dp", wm_DxPxS, w_DxS, precision=HIGHEST)
  cross = jnp.einsum("ds,dps->dp", w_DxS, alpha * beta, precision=HIGHEST)
  big_a = q - 2 * n * cross + n**2 * gamma * delta
  dd = kd * ld
  return big_a, *(jnp.einsum("ds,dps->dp", w_DxS**k, dd, precision=HIGHEST) for k in (2, 1, 3))


def _hsic(sums, w2_kd_a, w2_kd_b, n, debiased: bool):
  """HSIC of each resample, the copies of a stimulus counted as self-pairs: biased, the resample's Σ k_ij l_ij with
  the entries between copies zeroed and the diagonal kept, / (n−1)²; unbiased (Song et al. 2012, eq. 5) with K~, L~
  zeroed on the diagonal and between copies: tr(K~L~) = A − Σw²kd·ld, 1'K~1 = −Σw²kd and 1'K~L~1 = Σw³kd·ld
  (Σ_t w_t k_st = 0: the resample is centred)."""
  big_a, w2, w1, w3 = sums
  if not debiased:
    return (big_a - w2 + w1) / (n - 1) ** 2
  trace = big_a - w2
  return (trace + w2_kd_a * w2_kd_b / ((n - 1) * (n - 2)) - 2.0 * w3 / (n - 2)) / (n * (n - 3))


@partial(jax.jit, static_argnames=("debiased",))
def cka_draws(gram_NxSxS, gram_GxSxS, counts_DxS, *, debiased: bool):
  """`DxNxG` CKA of N feature Gram matrices against G response Gram matrices in each stimulus resample.

  A resample is given by its counts (`resample_counts`); the copies of a stimulus count as self-pairs (module
  docstring). Every term is a closed form in the all-stimulus Gram matrices and the counts (`_pair_sums`), so no
  resampled S x S matrix is formed: the cost per resample is one S x S matrix-vector product per (seed, subject)
  pair. Call it on float64 arrays inside `jax.enable_x64(True)` (`cka_of_resamples`): the closed form subtracts
  sums of similar size.

  Args:
    gram_NxSxS, gram_GxSxS: centred Gram matrices on all S stimuli (`rsa.centred_gram`).
    counts_DxS: how often each stimulus is drawn in each resample (all ones: the all-stimulus CKA).
    debiased: the unbiased HSIC estimator (`rsa.cka`).
  """
  w = counts_DxS
  N, G = gram_NxSxS.shape[0], gram_GxSxS.shape[0]
  n = jnp.sum(w, 1)[:, None]
  mk, ml = _moments(w, gram_NxSxS), _moments(w, gram_GxSxS)
  w2k, w2l = (jnp.einsum("ds,dxs->dx", w**2, m[2], precision=HIGHEST) for m in (mk, ml))
  # the (seed, subject) pairs, seed-major
  ik, il = jnp.repeat(jnp.arange(N), G), jnp.tile(jnp.arange(G), N)
  pair = _pair_sums(w, gram_NxSxS[ik], gram_GxSxS[il], [m[:, ik] for m in mk], [m[:, il] for m in ml])
  kl = _hsic(pair, w2k[:, ik], w2l[:, il], n, debiased)
  kk = _hsic(_pair_sums(w, gram_NxSxS, gram_NxSxS, mk, mk), w2k, w2k, n, debiased)
  ll = _hsic(_pair_sums(w, gram_GxSxS, gram_GxSxS, ml, ml), w2l, w2l, n, debiased)
  denom = kk[:, ik] * ll[:, il]
  ok = (denom > 0) & (kk[:, ik] > 0) & jnp.isfinite(denom) & jnp.isfinite(kl)
  ok = ok & (jnp.sum(w > 0, 1) >= 2)[:, None]
  value = jnp.where(ok, kl / jnp.sqrt(jnp.where(ok, denom, 1.0)), jnp.nan)
  return value.reshape(w.shape[0], N, G)


def cka_of_resamples(gram_NxSxS, gram_GxSxS, counts_DxS, *, debiased: bool, chunk: int = 128) -> np.ndarray:
  """`cka_draws` in float64, `chunk` resamples at a time (memory ~ chunk x N x G x S floats; the last chunk padded
  with all-ones rows, so every call has one shape and compiles once), as NumPy."""
  counts = np.asarray(counts_DxS, np.float64)
  width = min(len(counts), chunk)
  pad = -len(counts) % width
  counts = np.concatenate([counts, np.ones((pad, counts.shape[1]))])
  out = []
  with jax.enable_x64(True):
    k, l = (jnp.asarray(np.asarray(g, np.float64)) for g in (gram_NxSxS, gram_GxSxS))
    for start in range(0, len(counts), width):
      c = jnp.asarray(counts[start : start + width])
      out.append(np.asarray(cka_draws(k, l, c, debiased=debiased), np.float64))
  return np.concatenate(out)[: len(counts) - pad]


def _fold_members(test_KxS: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """`(idx_KxM, ok_KxM)`: each fold's held-out stimuli, padded to the largest fold (padding: index 0, ok False)."""
  members = [np.flatnonzero(t) for t in np.asarray(test_KxS, bool)]
  width = max(1, *(len(m) for m in members))
  idx = np.zeros((len(members), width), np.int32)
  ok = np.zeros((len(members), width), bool)
  for k, m in enumerate(members):
    idx[k, : len(m)], ok[k, : len(m)] = m, True
  return idx, ok


@jax.jit
def weighted_fold_r(pred_SxT, y_SxT, counts_DxS, idx_KxM, ok_KxM):
  """`DxT` mean over folds of the held-out Pearson r with each held-out stimulus weighted by its count in the
  resample: r = Σw(p−p̄)(y−ȳ) / sqrt(Σw(p−p̄)² Σw(y−ȳ)²), weighted means, which is Pearson's r of the resample with
  the drawn stimuli repeated. NaN where a fold has fewer than two distinct drawn stimuli or a constant side.

  Call it on float64 arrays inside `jax.enable_x64(True)` (`fold_r`): the weighted sums are one-pass, and a
  resample of a few near-equal responses leaves a variance below float32's resolution of their sum of squares."""

  def fold(idx_M, ok_M):
    okf = ok_M.astype(pred_SxT.dtype)
    p, y = pred_SxT[idx_M], y_SxT[idx_M]
    m = jnp.sum(okf)
    # centre on the fold's plain means first, so the one-pass sums below keep their digits
    p = jnp.where(ok_M[:, None], p - (jnp.sum(okf[:, None] * p, 0) / m)[None], 0.0)
    y = jnp.where(ok_M[:, None], y - (jnp.sum(okf[:, None] * y, 0) / m)[None], 0.0)
    w_DxM = counts_DxS[:, idx_M] * okf[None]
    n = jnp.sum(w_DxM, 1)[:, None]

    def wsum(v_MxT):
      return jnp.einsum("dm,mt->dt", w_DxM, v_MxT, precision=HIGHEST)

    sp, sy, spp, syy, spy = wsum(p), wsum(y), wsum(p * p), wsum(y * y), wsum(p * y)
    vp, vy = spp - sp * sp / n, syy - sy * sy / n
    ok = (vp > MIN_RELATIVE_VARIANCE * spp) & (vy > MIN_RELATIVE_VARIANCE * syy)
    ok = ok & (jnp.sum(w_DxM > 0, 1) >= 2)[:, None]
    return jnp.where(ok, (spy - sp * sy / n) / jnp.sqrt(jnp.where(ok, vp * vy, 1.0)), jnp.nan)

  return jnp.mean(jax.vmap(fold)(idx_KxM, ok_KxM), axis=0)


def fold_r(pred_SxT, y_SxT, counts_DxS, idx_KxM, ok_KxM, *, chunk: int = TARGET_CHUNK) -> np.ndarray:
  """`weighted_fold_r` in float64 (see there), `chunk` targets at a time (memory ~ 5 K D chunk floats), as NumPy."""
  n_targets = pred_SxT.shape[1]
  width = min(-(-n_targets // 128) * 128, chunk)  # ROIs of similar size share one compile
  out = []
  with jax.enable_x64(True):
    c = jnp.asarray(np.asarray(counts_DxS, np.float64))
    for start in range(0, n_targets, width):
      part = [np.asarray(a[:, start : start + width], np.float64) for a in (pred_SxT, y_SxT)]
      kept = part[0].shape[1]
      p, y = (jnp.asarray(np.pad(a, ((0, 0), (0, width - kept)))) for a in part)  # one shape: one compile
      r = weighted_fold_r(p, y, c, jnp.asarray(idx_KxM), jnp.asarray(ok_KxM))
      out.append(np.array(r, np.float64)[:, :kept])
  return np.concatenate(out, axis=1)


def resample_counts(indices_DxS: np.ndarray, n_stimuli: int) -> np.ndarray:
  """`DxS` float32: how often each stimulus is drawn in each resample."""
  idx = np.asarray(indices_DxS)
  counts = np.zeros((idx.shape[0], n_stimuli), np.float32)
  np.add.at(counts, (np.arange(idx.shape[0])[:, None], idx), 1.0)
  return counts


class MetricBootstrap:
  """Collects the stimulus-bootstrap draws of the CKA and encoding scores of a streamed evaluation (module
  docstring); `tables` turns them into the bootstrap, difference and two-level tables."""

  def __init__(self, *, n_boot: int, rules, readout: str = "mean", seed: int = BOOTSTRAP_SEED):
    self.n_boot = int(n_boot)
    self.readout = readout
    self.rules = list(rules)
    self.seed = seed
    self._indices: dict[int, np.ndarray] = {}
    self._counts: dict[int, np.ndarray] = {}
    self._rows = {"cka": [], "encoding": []}  # (row, draws_B, observed_N, draws_NxB)

  def indices(self, n_stimuli: int) -> np.ndarray:
    """The resamples of `n_stimuli` stimuli: the RSA bootstrap's (same key), so draws pair across metrics."""
    if n_stimuli not in self._indices:
      key = jax.random.key(self.seed)
      self._indices[n_stimuli] = np.asarray(rsa.resample_indices(key, self.n_boot, n_stimuli))
    return self._indices[n_stimuli]

  def counts(self, n_stimuli: int) -> np.ndarray:
    """`(1 + B) x S` float64: row 0 all ones (the all-stimulus score), then each resample's counts (`indices`), so
    one batch gives the observed score and its draws."""
    if n_stimuli not in self._counts:
      draws = resample_counts(self.indices(n_stimuli), n_stimuli)
      self._counts[n_stimuli] = np.concatenate([np.ones((1, n_stimuli)), draws]).astype(np.float64)
    return self._counts[n_stimuli]

  def _add(self, metric: str, where: dict, value_NxDxJ: np.ndarray, observed_NxJ: np.ndarray, valid_N: np.ndarray):
    """One row from per-seed, per-draw, per-subject values: seeds and subjects averaged inside each draw. `where`:
    the row's keys (rule, epoch, step, layer, roi, resolution, arm[, estimator])."""
    row = {
      k: where[k] for k in ("rule", "epoch", "step", "layer", "roi", "resolution", "arm", "estimator") if k in where
    }
    N, D = value_NxDxJ.shape[:2]
    seed_obs_N = np.full(N, np.nan)
    seed_draws_NxD = np.full((N, D), np.nan)
    seed_obs_N[valid_N] = observed_NxJ[valid_N].mean(-1)
    seed_draws_NxD[valid_N] = value_NxDxJ[valid_N].mean(-1)  # NaN when any subject's is
    draws_D = seed_draws_NxD[valid_N].mean(0)  # NaN when any seed's is
    with jax.enable_x64(True):
      lo, hi = (float(x) for x in rsa.percentile_ci(draws_D, 0.95))
    row.update(
      readout=self.readout,
      n_boot=D,
      n_undefined=int(D - int(rsa.n_defined(draws_D))),
      **{VALUE[metric]: float(seed_obs_N[valid_N].mean())},
      ci_lo=lo,
      ci_hi=hi,
    )
    self._rows[metric].append((row, draws_D, seed_obs_N, seed_draws_NxD))

  def add_cka(self, feats: dict, resp: ResponseData, *, headline: dict, invalid_N, **where) -> None:
    """Bootstrap rows of every ROI whose headline layer is in `feats` (N x S x U per layer; rows of `resp`)."""
    S = len(resp.stimuli)
    blocks = cka_scores.brain_blocks(resp)
    for layer, f_NxSxU in feats.items():
      rois = [r for r in resp.rois if headline.get(r) == layer]
      f = np.asarray(f_NxSxU, np.float32)
      bad_N = np.asarray(invalid_N, bool) | ~np.isfinite(f.reshape(len(f), -1)).all(1)
      if not rois or bad_N.all():
        continue
      gram_NxSxS = rsa.centred_gram(jnp.asarray(np.where(bad_N[:, None, None], 0.0, f)))
      for roi in rois:
        ys = [y for r, _, y in blocks if r == roi and y.shape[1]]
        if not ys:
          continue
        gram_JxSxS = jnp.stack([rsa.centred_gram(jnp.asarray(y)) for y in ys])
        for estimator, debiased in cka_scores.ESTIMATORS.items():
          if debiased and S < 4:
            continue
          both_DxNxJ = cka_of_resamples(gram_NxSxS, gram_JxSxS, self.counts(S), debiased=debiased)
          obs_NxJ, value_DxNxJ = both_DxNxJ[0], both_DxNxJ[1:]
          valid_N = ~bad_N & np.isfinite(obs_NxJ).all(1)
          if not valid_N.any():
            continue
          keys = dict(where, layer=layer, roi=roi, estimator=estimator)
          self._add("cka", keys, value_DxNxJ.transpose(1, 0, 2), obs_NxJ, valid_N)

  def add_encoding(
    self,
    *,
    layer: str,
    rois,
    pred_NxSxT,
    targets_SxT,
    reliability_T,
    groups,
    test_KxS,
    invalid_N,
    min_ceiling: float,
    **where,
  ) -> None:
    """Bootstrap rows of `rois` at `layer` from the held-out predictions of the targets given (`encoding_scores`).

    Args:
      pred_NxSxT, targets_SxT, reliability_T: held-out predictions, responses and ceilings of the chosen targets.
      groups: (roi, subject, mask_T) of every ROI and subject among those targets.
      test_KxS: the folds' held-out stimuli.
      invalid_N: seeds scored NaN whatever their features.
    """
    S = targets_SxT.shape[0]
    idx_KxM, ok_KxM = _fold_members(test_KxS)
    y = np.nan_to_num(np.asarray(targets_SxT, np.float64))
    counts = self.counts(S)
    per_seed = []  # seed -> G-list of summaries over the rows of `counts`
    held_out_S = np.asarray(test_KxS, bool).any(0)
    finite_target_T = np.isfinite(np.asarray(targets_SxT)[held_out_S]).all(0)
    for n in range(pred_NxSxT.shape[0]):
      pred_SxT = np.asarray(pred_NxSxT[n], np.float32)
      undefined_T = ~(np.isfinite(pred_SxT[held_out_S]).all(0) & finite_target_T)  # NaN r on all stimuli too
      pred = np.nan_to_num(pred_SxT)
      r_DxT = fold_r(pred, y, counts, idx_KxM, ok_KxM)
      r_DxT[:, undefined_T] = np.nan
      per_seed.append(
        [
          np.asarray(
            encoding.ceiling_normalise(r_DxT[:, m], reliability_T[m], min_ceiling=min_ceiling).summary_N,
            np.float64,
          )
          for _, _, m in groups
        ]
      )
    for roi in rois:
      cols = [g for g, (r, _, _) in enumerate(groups) if r == roi]
      if not cols:
        continue
      both_NxDxJ = np.array([np.stack([s[g] for g in cols], -1) for s in per_seed])
      obs_NxJ, value_NxDxJ = both_NxDxJ[:, 0], both_NxDxJ[:, 1:]
      valid_N = ~np.asarray(invalid_N, bool) & np.isfinite(obs_NxJ).all(1)
      if not valid_N.any():
        continue
      self._add("encoding", dict(where, layer=layer, roi=roi), value_NxDxJ, obs_NxJ, valid_N)

  def tables(self) -> dict[str, pd.DataFrame]:
    """`{M_bootstrap, M_bootstrap_differences, M_two_level_bootstrap}` of every metric with rows."""
    out = {}
    for metric, entries in self._rows.items():
      if not entries:
        continue
      value = VALUE[metric]
      boot = pd.DataFrame([e[0] for e in entries])
      out[f"{metric}_bootstrap"] = boot
      by = boot.groupby("estimator", sort=False).indices if "estimator" in boot else {None: np.arange(len(boot))}
      diffs, two_level = [], []
      for estimator, rows in by.items():
        sub = boot.iloc[rows].assign(pairs="all").rename(columns={value: "rho"}).reset_index(drop=True)
        draws = np.stack([entries[i][1] for i in rows])
        d = bootstrap_differences.difference_table(sub, draws, rules=self.rules)
        t = two_level_bootstrap.difference_table(
          sub,
          np.stack([entries[i][2] for i in rows]),
          np.stack([entries[i][3] for i in rows]),
          rules=self.rules,
        )
        for df, parts in ((d, diffs), (t, two_level)):
          df = df.drop(columns="pairs").rename(columns={"rho_a": f"{value}_a", "rho_b": f"{value}_b"})
          if estimator is not None:
            df.insert(0, "estimator", estimator)
          parts.append(df)
      out[f"{metric}_bootstrap_differences"] = pd.concat(diffs, ignore_index=True)
      out[f"{metric}_two_level_bootstrap"] = pd.concat(two_level, ignore_index=True)
    return out
