"""Cross-validated best-layer selection, so the best-layer score is not biased upward by the max over layers."""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from leut.rsa.compare import as_pair_weights, as_vector, compare
from leut.rsa.precision import HIGHEST
from leut.rsa.ranks import centred_unit, kept_non_finite, sorted_ranks


class BestLayerResult(NamedTuple):
  score: jax.Array  # ...        held-out score of the layer chosen on the other half, averaged
  chosen: jax.Array  # ...xRx2    layer index chosen on half A (scored on B) and on half B (scored on A)
  held_out: jax.Array  # ...xRx2    the held-out scores
  naive_max: jax.Array  # ...        max over layers of the all-stimulus score (biased upward; for reference)


# One compiled program per shape and setting (the halvings' `lax.map` body is a fresh closure at every call, which
# op-by-op dispatch would compile anew each time).
@functools.partial(jax.jit, static_argnames=("n_splits", "method"))
def cross_validated_best_layer(
  layer_rdms_LxSxS, brain_rdms, *, key: jax.Array, n_splits: int = 1, method: str = "spearman", pair_mask=None
) -> BestLayerResult:
  """Choose the best layer on a random half of the stimuli, score it on the other half, swap, average.

  For each of `n_splits` random stimulus halvings (A, B): l_A = argmax_l score_l(pairs within A),
  held-out s_A = score_{l_A}(pairs within B), and symmetrically; score = mean over splits and both directions.
  The max over L noisy layer scores is biased upward; a layer chosen on independent stimuli is not (selection on
  held-out data, cf. Kriegeskorte et al. 2009, "Circular analysis in systems neuroscience").
  For Spearman every vector is sorted once: the ranks within a half follow from that order by a cumulative sum of the
  half's 0/1 pair weights (`ranks.sorted_ranks`), so a split costs O(P) per vector instead of a sort.

  Args:
    layer_rdms_LxSxS: `...xLxSxS` (or `...xLxP`); the layer axis is -3 (-2 for vectors).
    brain_rdms: `SxS` or `JxSxS` (or `P`/`JxP`); with J subjects the score is the mean per-subject score.
    key: draws the halvings.
    pair_mask: optional fixed restriction (e.g. cross-run pairs), combined with the within-half masks.

  Undefined scores are NaN (see `compare`): a layer (or brain) RDM with a NaN/inf on any kept pair is undefined on
  every half; when a layer's score on the choosing half is NaN (that, or an RDM constant on the half), that split's
  held-out score is NaN, and so is `score`; `naive_max` is NaN when any layer's all-stimulus score is.
  """
  lv = as_vector(layer_rdms_LxSxS)
  bv = as_vector(brain_rdms)
  if bv.ndim == 1:
    bv = bv[None, :]
  P = lv.shape[-1]
  S = int(round((1 + (1 + 8 * P) ** 0.5) / 2))
  iu, ju = np.triu_indices(S, k=1)
  base_P = jnp.ones((P,), jnp.float32) if pair_mask is None else as_pair_weights(pair_mask, P)
  # A NaN/inf on any kept pair (not only on a half's pairs) leaves that layer, or every layer for the brain, undefined.
  broken_L = kept_non_finite(lv, base_P) | jnp.any(kept_non_finite(bv, base_P))
  scores_of = lambda w_P: jnp.where(broken_L, jnp.nan, scores(w_P))  # noqa: E731

  if method == "spearman":
    l_sorted, b_sorted = _presort(lv), _presort(bv)

    def scores(w_P):  # ...xL, = the mean over J of compare(lv, bv, "spearman", pair_mask=w_P)
      zl, zb = _masked_rank_z(*l_sorted, w_P), _masked_rank_z(*b_sorted, w_P)
      per = jnp.einsum("...lp,jp->...lj", zl, zb, precision=HIGHEST)
      return jnp.mean(per, axis=-1)
  else:

    def scores(w_P):  # ...xL
      per = compare(lv[..., None, :], bv, method, pair_mask=w_P, square=False)
      return jnp.mean(per, axis=-1)

  def one_split(k):
    half_S = jax.random.permutation(k, S) < S // 2
    in_a = (half_S[iu] & half_S[ju]).astype(jnp.float32) * base_P
    in_b = (~half_S[iu] & ~half_S[ju]).astype(jnp.float32) * base_P
    sa, sb = scores_of(in_a), scores_of(in_b)
    la, lb = jnp.argmax(sa, axis=-1), jnp.argmax(sb, axis=-1)
    # A choice among layers of which one is undefined on the choosing half is no choice: its held-out score is NaN.
    ha = jnp.where(jnp.isnan(sa).any(-1), jnp.nan, jnp.take_along_axis(sb, la[..., None], axis=-1)[..., 0])
    hb = jnp.where(jnp.isnan(sb).any(-1), jnp.nan, jnp.take_along_axis(sa, lb[..., None], axis=-1)[..., 0])
    return jnp.stack([la, lb], -1), jnp.stack([ha, hb], -1)

  chosen_R, held_R = jax.lax.map(one_split, jax.random.split(key, n_splits))
  chosen = jnp.moveaxis(chosen_R, 0, -2)
  held = jnp.moveaxis(held_R, 0, -2)
  naive = jnp.max(scores_of(base_P), axis=-1)
  return BestLayerResult(jnp.mean(held, axis=(-2, -1)), chosen, held, naive)


def _presort(v_xP):
  """Sort order, sorted values and inverse order (sorted position of each entry) of every row, `...xP` each."""
  P = v_xP.shape[-1]
  order = jnp.argsort(v_xP, axis=-1, stable=True)
  xs = jnp.take_along_axis(v_xP, order, axis=-1)
  flat = order.reshape(-1, P)
  ar = jnp.arange(P, dtype=flat.dtype)
  pos = jax.vmap(lambda o: jnp.zeros_like(o).at[o].set(ar, unique_indices=True))(flat).reshape(order.shape)
  return order, xs, pos


def _masked_rank_z(order, xs, pos, w_P):
  """`centred_unit(rank_average(v, w), w)` of every row from its presorted form (weight-0 entries are ignored)."""
  r_sorted = sorted_ranks(xs, w_P[order])
  return centred_unit(jnp.take_along_axis(r_sorted, pos, axis=-1), w_P)
