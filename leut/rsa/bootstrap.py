"""Paired stimulus bootstrap of RDM comparisons (PROTOCOL §3.6), exact and memory bounded.

A resample draws S stimulus indices s_1..s_S with replacement; positions i < j give pairs (s_i, s_j); pairs with
s_i = s_j are dropped (and optionally same-run pairs); the RDM entries are read with duplicates and compared.

Speed: an unordered pair {a, b} (a != b) occurs exactly c_a * c_b times in a resample (c = stimulus counts), so the
resampled vector is the fixed upper triangle with integer multiplicities w_p = c_a c_b m_p. Average ranks of a
multiset follow from a cumulative sum of w in the vector's sorted order (`ranks.rank_average`), so every RDM is
sorted once, and each resample costs O(P) per RDM (two gathers, a cumulative sum and dot products) instead of a
sort. Resamples are processed in pairs so that each gather moves both weight vectors at once (complex64 packing).
The result is identical to ranking the expanded vector (ties, including float32 ties, are averaged exactly).

Undefined draws: a resample whose kept pairs hold fewer than two distinct stimulus pairs, or in which a model or
subject vector is constant on them, has no correlation; its score is NaN (as `compare`), and `percentile_ci` /
`bootstrap_p` use the defined draws and say how many there are (`n_defined`). Non-finite RDM entries are refused by
`bootstrap` (a `NonFiniteInputError`); the jittable `bootstrap_scores` returns NaN for them.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from leut.rsa.compare import as_pair_weights, as_vector
from leut.rsa.errors import NonFiniteInputError
from leut.rsa.pairs import cross_run_mask
from leut.rsa.precision import HIGHEST
from leut.rsa.ranks import blocked_cumsum
from leut.rsa.rdm import n_stimuli as stimuli_from_pairs
from leut.xla_cpu import dot_only_library_fusion, jit_with


class BootstrapResult(NamedTuple):
  scores: jax.Array  # ...xJxB  score of every model vs every subject in every resample
  observed: jax.Array  # ...xJ    score on the full stimulus set with the same pair restrictions
  indices: jax.Array  # BxS      the resample indices (share them to pair other comparisons)


def resample_indices(key: jax.Array, n_boot: int, n_stimuli: int) -> jax.Array:
  """`BxS` int32 stimulus indices drawn uniformly with replacement from a JAX key."""
  return jax.random.randint(key, (n_boot, n_stimuli), 0, n_stimuli, dtype=jnp.int32)


def min_defined_draws(level: float = 0.95) -> int:
  """Fewest defined draws a percentile interval at `level` needs: 2 / (1 - level) (40 at 95%), so that each tail
  holds at least one draw and neither end is read off the extreme draw alone."""
  return int(np.ceil(2.0 / (1.0 - level) - 1e-9))


def n_defined(samples_B: jax.Array) -> jax.Array:
  """Number of finite draws along the last axis (the others are undefined resamples, see the module docstring)."""
  return jnp.sum(jnp.isfinite(jnp.asarray(samples_B)), axis=-1)


def percentile_ci(samples_B: jax.Array, level: float = 0.95) -> tuple[jax.Array, jax.Array]:
  """Percentile interval of bootstrap samples along the last axis: (q_{(1-level)/2}, q_{(1+level)/2}).

  Computed over the defined (finite) draws only; NaN when fewer than `min_defined_draws(level)` are defined. Report
  `n_defined` beside it. Efron & Tibshirani (1993), An Introduction to the Bootstrap, ch. 13.
  """
  alpha = (1.0 - level) / 2.0
  s = jnp.asarray(samples_B)
  finite = jnp.isfinite(s)
  q = jnp.nanquantile(jnp.where(finite, s, jnp.nan), jnp.asarray([alpha, 1.0 - alpha]), axis=-1)
  enough = jnp.sum(finite, axis=-1) >= min_defined_draws(level)
  return jnp.where(enough, q[0], jnp.nan), jnp.where(enough, q[1], jnp.nan)


def bootstrap_p(diffs_B: jax.Array) -> jax.Array:
  """Two-sided bootstrap p of a difference: p = (2 min(#{d_b <= 0}, #{d_b >= 0}) + 1) / (B + 1), capped at 1.

  PROTOCOL §3.6 (paper A v4); Efron & Tibshirani (1993) for percentile intervals. Last axis = resamples. B counts
  the defined (finite) draws only; p is NaN when none is defined.
  """
  d = jnp.asarray(diffs_B)
  n_le = jnp.sum(d <= 0, axis=-1)
  n_ge = jnp.sum(d >= 0, axis=-1)
  B = n_defined(d)
  return jnp.where(B > 0, jnp.minimum((2.0 * jnp.minimum(n_le, n_ge) + 1.0) / (B + 1.0), 1.0), jnp.nan)


class _Sorted(NamedTuple):
  order: jax.Array  # NxP  argsort of each vector (sorted position -> pair)
  pos: jax.Array  # NxP  sorted position of each pair (inverse of order)
  tie_idx: jax.Array  # NxK  pairs that share their value with another pair (padded with P, which is dropped)
  tie_lo: jax.Array  # NxK  sorted position of the first member of that pair's tie group
  tie_hi: jax.Array  # NxK  sorted position of the last member


def _prepare(vecs_NxP) -> _Sorted:
  """Sort every vector once and describe its tie groups (jittable; every pair is listed as possibly tied)."""
  order = jnp.argsort(vecs_NxP, axis=-1, stable=True).astype(jnp.int32)
  xs = jnp.take_along_axis(vecs_NxP, order, axis=-1)
  N, P = xs.shape
  ar = jnp.broadcast_to(jnp.arange(P, dtype=jnp.int32), (N, P))
  new = jnp.concatenate([jnp.ones((N, 1), bool), xs[:, 1:] != xs[:, :-1]], axis=1)
  last = jnp.concatenate([xs[:, 1:] != xs[:, :-1], jnp.ones((N, 1), bool)], axis=1)
  lo_s = jax.lax.cummax(jnp.where(new, ar, 0), axis=1)
  hi_s = jax.lax.cummin(jnp.where(last, ar, P), axis=1, reverse=True)
  unsort = jax.vmap(lambda o, v: jnp.zeros_like(v).at[o].set(v, unique_indices=True))
  return _Sorted(order, unsort(order, ar), ar, unsort(order, lo_s), unsort(order, hi_s))


def _prepare_host(vecs_NxP) -> tuple[_Sorted, bool]:
  """NumPy twin of `_prepare` (a host argsort is faster than XLA:CPU's sort; `benchmarks/README.md`) that lists only
  the pairs that are really tied, so a resample fixes a few entries instead of gathering every pair's tie range."""
  v = np.asarray(vecs_NxP, np.float32)
  N, P = v.shape
  order = np.argsort(v, axis=-1).astype(np.int32)  # not stable: a tie group is ranked as a whole (tie_lo/hi)
  xs = np.take_along_axis(v, order, axis=-1)
  ar = np.broadcast_to(np.arange(P, dtype=np.int32), (N, P))
  same = xs[:, 1:] == xs[:, :-1]
  new = np.concatenate([np.ones((N, 1), bool), ~same], axis=1)
  last = np.concatenate([~same, np.ones((N, 1), bool)], axis=1)
  lo_s = np.maximum.accumulate(np.where(new, ar, 0), axis=1)
  hi_s = np.minimum.accumulate(np.where(last, ar, P)[:, ::-1], axis=1)[:, ::-1]
  pos = np.empty_like(order)
  np.put_along_axis(pos, order, ar, axis=-1)
  tied_s = lo_s != hi_s  # in sorted order
  K = max(1, int(tied_s.sum(1).max()))
  tie_idx = np.full((N, K), P, np.int32)
  tie_lo = np.zeros((N, K), np.int32)
  tie_hi = np.zeros((N, K), np.int32)
  for i in range(N):
    k = np.nonzero(tied_s[i])[0]
    tie_idx[i, : len(k)] = order[i, k]
    tie_lo[i, : len(k)] = lo_s[i, k]
    tie_hi[i, : len(k)] = hi_s[i, k]
  return _Sorted(order, pos, tie_idx, tie_lo, tie_hi), bool(tied_s.any())


def _centred_ranks(srt: _Sorted, w_P, n, ties: bool):
  """Centred multiset average ranks in pair order, and their weighted sum of squares (None when `ties` is False:
  then it is the same for every vector, see `_tie_free_ss`).

  r_p = (sum of weights sorted before p's tie group) + (weight of the group + 1) / 2, read from one cumulative sum
  of the weights in sorted order; for an untied pair that is incl_p - (w_p - 1) / 2."""
  ws = w_P[srt.order]
  incl = blocked_cumsum(ws)
  r = incl[srt.pos] - 0.5 * (w_P - 1.0)
  if ties:
    r_tied = 0.5 * ((incl - ws)[srt.tie_lo] + incl[srt.tie_hi] + 1.0)
    r = r.at[srt.tie_idx].set(r_tied, mode="drop")
  rc = r - 0.5 * (n + 1.0)
  ss = jnp.sum(w_P * rc * rc) if ties else None
  return rc, ss


def _tie_free_ss(w_P, n):
  """sum_p w_p (r_p - mean)^2 for average ranks of a multiset whose only ties are the copies of each entry:
  (N^3 - N - sum_p (w_p^3 - w_p)) / 12."""
  return (n**3 - n - jnp.sum(w_P**3 - w_P)) / 12.0


def _weighted_centred(v_P, w_P, n):
  m = jnp.sum(w_P * v_P) / n
  c = v_P - m
  return c, jnp.sum(w_P * c * c)


def _model_ranks_pair(srt: _Sorted, w_2xP, n_2, ties: bool):
  """`_centred_ranks` for two resamples at once: both weight vectors travel as one complex64 array, so each of the
  two permutations (into sorted order and back) is a single gather of 8-byte elements (~2x cheaper on CPU than two
  float32 gathers)."""
  ws_c = jax.lax.complex(w_2xP[0], w_2xP[1])[srt.order]
  ws_2xP = jnp.stack([ws_c.real, ws_c.imag])
  incl_2xP = jax.vmap(blocked_cumsum)(ws_2xP)
  back_c = jax.lax.complex(incl_2xP[0], incl_2xP[1])[srt.pos]
  r_2xP = jnp.stack([back_c.real, back_c.imag]) - 0.5 * (w_2xP - 1.0)
  if ties:
    r_tied_2xK = 0.5 * ((incl_2xP - ws_2xP)[:, srt.tie_lo] + incl_2xP[:, srt.tie_hi] + 1.0)
    r_2xP = r_2xP.at[:, srt.tie_idx].set(r_tied_2xK, mode="drop")
  rc_2xP = r_2xP - 0.5 * (n_2[:, None] + 1.0)
  ss_2 = jnp.sum(w_2xP * rc_2xP * rc_2xP, axis=-1) if ties else None
  return rc_2xP, ss_2


def _resample_pair(idx_2xS, models: _Sorted, subjects: _Sorted, pair_w_P, iu, ju, *, method, model_ties, subject_ties):
  """Scores `2xMxJ` for two resamples (see module docstring)."""
  S = idx_2xS.shape[-1]
  counts_2xS = jax.vmap(lambda i: jnp.zeros((S,), jnp.float32).at[i].add(1.0))(idx_2xS)
  w_2xP = counts_2xS[:, iu] * counts_2xS[:, ju] * pair_w_P[None, :]
  n_2 = jnp.sum(w_2xP, axis=-1)
  tie_free_ss_2 = jax.vmap(_tie_free_ss)(w_2xP, n_2)

  def subject_side(w_P, n, tf):
    sc_JxP, sss_J = jax.vmap(lambda *f: _centred_ranks(_Sorted(*f), w_P, n, subject_ties))(*subjects)
    if sss_J is None:
      sss_J = jnp.broadcast_to(tf, (sc_JxP.shape[0],))
    return sc_JxP * w_P[None, :], sss_J

  a_2xJxP, sss_2xJ = jax.vmap(subject_side)(w_2xP, n_2, tie_free_ss_2)

  def per_model(fields):
    rc_2xP, ss_2 = _model_ranks_pair(_Sorted(*fields), w_2xP, n_2, model_ties)
    cross_2xJ = jnp.einsum("bjp,bp->bj", a_2xJxP, rc_2xP, precision=HIGHEST)
    return cross_2xJ, (tie_free_ss_2 if ss_2 is None else ss_2)

  # Sequential over models: one P-vector at a time stays in cache, which beats a vmap by ~2x on CPU.
  cross_Mx2xJ, mss_Mx2 = jax.lax.map(per_model, tuple(models))
  cross_2xMxJ = jnp.moveaxis(cross_Mx2xJ, 1, 0)
  mss_2xM = mss_Mx2.T
  # Undefined draws (module docstring): < 2 distinct kept pairs, or a vector constant on them (no rank spread).
  defined = (jnp.sum(w_2xP > 0, axis=-1) >= 2)[:, None, None] & (mss_2xM[:, :, None] > 0) & (sss_2xJ[:, None, :] > 0)
  if method == "rho_a":
    # Expected Spearman rho under random tie breaking: 12 sum w (r_m - rbar)(r_s - rbar) / (N^3 - N).
    return jnp.where(defined, 12.0 * cross_2xMxJ / (n_2**3 - n_2)[:, None, None], jnp.nan)
  denom = jnp.sqrt(mss_2xM[:, :, None] * sss_2xJ[:, None, :])
  return jnp.where(defined, cross_2xMxJ / jnp.where(defined, denom, 1.0), jnp.nan)


def bootstrap_scores(
  model_vecs_MxP,
  subject_vecs_JxP,
  indices_BxS,
  pair_w_P,
  *,
  method: str = "spearman",
  model_ties: bool = True,
  subject_ties: bool = True,
  batch_size: int = 1,
) -> jax.Array:
  """Jittable core: `MxJxB` scores for flat model and subject vectors under stimulus resamples `indices_BxS`.

  `pair_w_P` are 0/1 pair weights (restrictions that do not depend on the resample). `model_ties`/`subject_ties` are
  static: False skips tie bookkeeping (only valid when the vectors have no exactly equal entries).
  Undefined draws are NaN (module docstring), and so is every score of a vector with a NaN or ±inf entry.
  """
  mvec = jnp.asarray(model_vecs_MxP, jnp.float32)
  svec = jnp.asarray(subject_vecs_JxP, jnp.float32)
  bad_MxJ = (~jnp.all(jnp.isfinite(mvec), axis=-1))[:, None] | (~jnp.all(jnp.isfinite(svec), axis=-1))[None, :]
  if method == "pearson":
    out = _pearson_scores(mvec, svec, indices_BxS, pair_w_P, batch_size=batch_size)
  else:
    out = _rank_scores(
      _prepare(mvec),
      _prepare(svec),
      indices_BxS,
      pair_w_P,
      method=method,
      model_ties=model_ties,
      subject_ties=subject_ties,
      batch_size=batch_size,
    )
  return jnp.where(bad_MxJ[:, :, None], jnp.nan, out)


def _rank_scores(
  models: _Sorted, subjects: _Sorted, indices_BxS, pair_w_P, *, method, model_ties, subject_ties, batch_size
):
  B, S = indices_BxS.shape
  iu, ju = (jnp.asarray(t, jnp.int32) for t in np.triu_indices(S, k=1))
  if B % 2:  # resamples go in pairs; repeat the last one and drop its copy
    indices_BxS = jnp.concatenate([indices_BxS, indices_BxS[-1:]], axis=0)

  def one(idx_2xS):
    return _resample_pair(
      idx_2xS, models, subjects, pair_w_P, iu, ju, method=method, model_ties=model_ties, subject_ties=subject_ties
    )

  out = jax.lax.map(one, indices_BxS.reshape(-1, 2, S), batch_size=batch_size)  # (B/2)x2xMxJ
  out = out.reshape((-1,) + out.shape[2:])[:B]
  return jnp.moveaxis(out, 0, -1)


def _pearson_scores(mvec_MxP, svec_JxP, indices_BxS, pair_w_P, *, batch_size):
  S = indices_BxS.shape[-1]
  iu, ju = (jnp.asarray(t, jnp.int32) for t in np.triu_indices(S, k=1))
  out = jax.lax.map(
    lambda i: _one_resample_pearson(i, mvec_MxP, svec_JxP, pair_w_P, iu, ju), indices_BxS, batch_size=batch_size
  )
  return jnp.moveaxis(out, 0, -1)


def _one_resample_pearson(idx_S, mvec_MxP, svec_JxP, pair_w_P, iu, ju):
  S = idx_S.shape[0]
  counts_S = jnp.zeros((S,), jnp.float32).at[idx_S].add(1.0)
  w_P = counts_S[iu] * counts_S[ju] * pair_w_P
  n = jnp.sum(w_P)
  sc_JxP, sss_J = jax.vmap(lambda v: _weighted_centred(v, w_P, n))(svec_JxP)
  mc_MxP, mss_M = jax.vmap(lambda v: _weighted_centred(v, w_P, n))(mvec_MxP)
  cross_MxJ = jnp.einsum("mp,jp->mj", mc_MxP * w_P[None, :], sc_JxP, precision=HIGHEST)
  denom = jnp.sqrt(mss_M[:, None] * sss_J[None, :])
  # Undefined (NaN): < 2 distinct kept pairs, or a vector constant on them (checked on the values, not on the sums).
  kept_1xP = (w_P > 0)[None, :]

  def varies(v_XxP):
    return jnp.max(jnp.where(kept_1xP, v_XxP, -jnp.inf), -1) > jnp.min(jnp.where(kept_1xP, v_XxP, jnp.inf), -1)

  defined = (jnp.sum(w_P > 0) >= 2) & varies(mvec_MxP)[:, None] & varies(svec_JxP)[None, :] & (denom > 0)
  return jnp.where(defined, cross_MxJ / jnp.where(defined, denom, 1.0), jnp.nan)


@functools.cache
def _compiled_kernels():
  """The jitted rank and Pearson kernels, compiled with `leut.xla_cpu.dot_only_library_fusion` options."""
  options = dot_only_library_fusion()
  rank = jit_with(options, _rank_scores, static_argnames=("method", "model_ties", "subject_ties", "batch_size"))
  pearson = jit_with(options, _pearson_scores, static_argnames=("batch_size",))
  return rank, pearson


def bootstrap(
  model_rdms,
  subject_rdms,
  *,
  key: jax.Array | None = None,
  indices_BxS=None,
  n_boot: int = 1000,
  method: str = "spearman",
  runs_JxS=None,
  pair_mask=None,
  batch_size: int = 1,
  devices=None,
) -> BootstrapResult:
  """Paired stimulus bootstrap of `compare(model, subject)` (PROTOCOL §3.6, A v4 / C v3 scheme, fixed).

  Args:
    model_rdms: `...xSxS` or `...xP` (any leading axes: conditions, seeds, layers, ...).
    subject_rdms: `JxSxS` or `JxP` subject (or ROI) RDMs; pass the mean RDM as J=1 for the mean-RDM scheme.
    key / indices_BxS: resample indices are `indices_BxS` if given, else drawn from `key`
      (`resample_indices(key, n_boot, S)`). Reuse the returned `indices` for every condition, seed, ROI and resolution
      so that differences are paired.
    method: "spearman" (average ranks of the resampled vector, duplicates tie), "pearson" or "rho_a".
    runs_JxS: if given, same-run pairs (for any subject) are dropped in every resample (PROTOCOL §3.4).
    pair_mask: any further fixed restriction (SxS or P boolean).
    batch_size: resamples processed together by `jax.lax.map`; models are streamed one at a time inside, the fastest
      layout on CPU. Memory ~ (M + J) x P x 3 floats plus a few batch_size x (J + 2) x P buffers, so 720 stimuli x
      10,000 resamples needs well under 1 GB.
    devices: resample chunks are spread over these devices (default: all local devices of the default backend; on a
      2-core CPU start Python with XLA_FLAGS=--xla_force_host_platform_device_count=2 to use both cores).

  Raises:
    NonFiniteInputError: an RDM has a NaN or ±inf entry (undefined draws of finite RDMs are NaN scores instead).

  Returns:
    BootstrapResult(scores `...xJxB`, observed `...xJ`, indices `BxS`). Pattern (stimulus) bootstrap as in Nili et al.
    (2014) / rsatoolbox `eval_bootstrap_pattern`, with results identical to ranking each expanded resampled vector.
    Average seeds inside each draw with `scores.mean(axis=seed_axis)`, take differences of paired scores, then
    `percentile_ci` and `bootstrap_p` (both over the defined draws; count them with `n_defined`).

  Example:
    res = bootstrap(model_rdms_CxNxSxS, brain_JxSxS, key=jax.random.key(0), n_boot=1000, runs_JxS=runs)
    d_B = res.scores[0].mean(0).mean(0) - res.scores[1].mean(0).mean(0); p = bootstrap_p(d_B)
  """
  if method not in ("spearman", "pearson", "rho_a"):
    raise ValueError(f"bootstrap supports spearman, pearson, rho_a; got {method!r}")
  mv = as_vector(model_rdms)
  sv = as_vector(subject_rdms)
  if sv.ndim == 1:
    sv = sv[None, :]
  for name, v in (("model_rdms", mv), ("subject_rdms", sv)):
    n_bad = int(np.sum(~np.isfinite(np.asarray(v))))
    if n_bad:
      raise NonFiniteInputError(
        f"bootstrap: {name} has {n_bad} NaN/inf pair entries (a diverged seed?); drop those RDMs"
      )
  lead = mv.shape[:-1]
  P = mv.shape[-1]
  mv = mv.reshape(-1, P)
  S = stimuli_from_pairs(P)
  if indices_BxS is None:
    if key is None:
      raise ValueError("give either key or indices_BxS")
    indices_BxS = resample_indices(key, n_boot, S)
  indices_BxS = jnp.asarray(indices_BxS, jnp.int32)
  w_P = jnp.ones((P,), jnp.float32)
  if runs_JxS is not None:
    w_P = w_P * as_pair_weights(cross_run_mask(runs_JxS), P)
  if pair_mask is not None:
    w_P = w_P * as_pair_weights(pair_mask, P)
  rank_scores_jit, pearson_scores_jit = _compiled_kernels()
  if method == "pearson":
    models, subjects = np.asarray(mv, np.float32), np.asarray(sv, np.float32)
    run = lambda m, s_, idx, w: pearson_scores_jit(m, s_, idx, w, batch_size=batch_size)
  else:
    (models, model_ties), (subjects, subject_ties) = _prepare_host(mv), _prepare_host(sv)
    run = lambda m, s_, idx, w: rank_scores_jit(
      m, s_, idx, w, method=method, model_ties=model_ties, subject_ties=subject_ties, batch_size=batch_size
    )
  devices = list(devices) if devices is not None else jax.local_devices()
  B = indices_BxS.shape[0]
  # The observed score is the identity resample, run with the others; padding with more identity rows gives every
  # device an equal, even-sized chunk (one compiled shape, resamples go in pairs).
  ident = jnp.arange(S, dtype=jnp.int32)[None, :]
  n_rows = -(-(B + 1) // (2 * len(devices))) * 2 * len(devices)
  all_idx = jnp.concatenate([indices_BxS, jnp.broadcast_to(ident, (n_rows - B, S))])
  per_dev = n_rows // len(devices)
  outs = []
  for d, dev in enumerate(devices):  # async dispatch: chunks run concurrently, one per device
    put = lambda x: jax.device_put(x, dev)
    outs.append(
      run(
        jax.tree.map(put, models), jax.tree.map(put, subjects), put(all_idx[d * per_dev : (d + 1) * per_dev]), put(w_P)
      )
    )
  scores_all = jnp.concatenate([jax.device_put(o, devices[0]) for o in outs], axis=-1)
  scores, observed = scores_all[..., :B], scores_all[..., B]
  J = sv.shape[0]
  return BootstrapResult(scores.reshape(lead + (J, B)), observed.reshape(lead + (J,)), indices_BxS)
