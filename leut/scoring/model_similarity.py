"""Model-to-model RDM analyses, from the model RDMs the evaluation already builds (each one once).

While `leut.evaluate` streams the checkpoints, every model RDM (upper triangle, `NxP` for N seeds) is handed to a
`ModelSimilarity` collector as its standardised ranks over all stimulus pairs (`standardised_ranks`; the evaluation
passes those its Spearman scoring kernel has just computed, `leut.evaluate.score_and_rank_rdms`, so each RDM is
ranked once), and compared with the RDMs it needs by Spearman's ρ over all stimulus pairs (`spearman_matrix`), on
the device. `results/model_similarity.csv`:

  analysis, rule_a, rule_b, epoch_a, epoch_b, layer, resolution, arm, readout, seed_pairs, n_pairs, rho, rho_sd,
  dissimilarity, note

  drift_from_epoch0  rule_a = rule_b, epoch_a = e, epoch_b = 0, seed_pairs 'same_seed': the mean over seeds n of
                     ρ(RDM_{n,e}, RDM_{n,0}), the same seed's RDM at epoch e and at its initialisation, same layer,
                     resolution and arm (how far training moved the layer's geometry); every milestone and condition.
  inter_seed         rule_a = rule_b, epoch_a = epoch_b, seed_pairs 'different_seeds': the mean over seed pairs n < m
                     of ρ(RDM_{n,e}, RDM_{m,e}) (Mehrer et al. 2020): how consistent networks of one rule are, an
                     inter-seed ceiling for model-to-model similarities; every milestone and condition.
  rule_vs_rule       rule_a before rule_b in config order, epoch_a = epoch_b: the mean of ρ(RDM^a_{n,e}, RDM^b_{m,e})
                     over seed pairs n ≠ m ('different_seeds', comparable with inter_seed) and over n = m
                     ('same_seed': both rules started from the same initialisation); at the `eval.stats_epochs`
                     milestones, headline resolution (the first configured) and native arm only, because it keeps
                     every rule's RDMs until the last rule is scored.

rho is the mean over the n_pairs seed pairs with a defined ρ, rho_sd their SD (ddof = 1; NaN below two pairs),
dissimilarity = 1 − rho. A seed whose scores are NaN in rsa.csv (constant or non-finite features, a diverged network)
is left out; a row with no defined pair has rho NaN and a note. Memory: the current rule's epoch-0 vectors
(layers × resolutions × arms × N × P float32) plus the rule_vs_rule vectors (rules × stats epochs × layers × N × P
float32; 720 stimuli → P = 258,840, about 1 MB per seed and layer), kept on the device; only the N drift values and
the N × N correlations of each `add` come back to the host.
"""

from __future__ import annotations

from itertools import combinations

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from leut import rsa
from leut.rsa.precision import HIGHEST

COLUMNS = [
  "analysis",
  "rule_a",
  "rule_b",
  "epoch_a",
  "epoch_b",
  "layer",
  "resolution",
  "arm",
  "readout",
  "seed_pairs",
  "n_pairs",
  "rho",
  "rho_sd",
  "dissimilarity",
  "note",
]
ANALYSES = ("drift_from_epoch0", "inter_seed", "rule_vs_rule")
NO_PAIR = "no defined seed pair"


@jax.jit
def standardised_ranks(rdm_NxP: jax.Array) -> jax.Array:
  """z_n = centred_unit(rank_average(v_n)): the average ranks of each RDM vector, centred and scaled to unit norm, so
  that Spearman's ρ of two RDMs is one dot product (`spearman_matrix`): z = (r − mean r) / ‖r − mean r‖ (Spearman
  1904, Am. J. Psychol. 15:72). NaN rows where ρ is undefined (a constant or non-finite RDM; `rsa.centred_unit`).
  The same kernels as the model-vs-brain scores (`leut.evaluate.score_rdms`)."""
  return rsa.centred_unit(rsa.rank_average(rdm_NxP))


@jax.jit
def spearman_matrix(z_NxP: jax.Array, z_MxP: jax.Array) -> jax.Array:
  """`NxM` Spearman correlations between two sets of RDMs given as `standardised_ranks`:

    ρ_nm = Σ_p z_{n,p} z_{m,p},  z = (r − mean r) / ‖r − mean r‖,  r the average ranks of the RDM's upper triangle,

  which is `scipy.stats.spearmanr` of the two upper triangles (ties averaged). Second-order comparison of
  representational geometries as in Kriegeskorte et al. (2008), Front. Syst. Neurosci. 2:4, and between networks
  trained from different seeds as in Mehrer et al. (2020), Nat. Commun. 11:5725. Full float32 products.
  """
  return jnp.einsum("np,mp->nm", z_NxP, z_MxP, precision=HIGHEST)


@jax.jit
def _compare(z_NxP, invalid_N, z0_NxP=None):
  """`(z, drift_N, gram_NxN)` in one call: z with the rows of `invalid_N` NaN, ρ(z_n, z0_n) of each seed with its
  epoch-0 ranks (`z0_NxP`, None at epoch 0: z itself) and the `spearman_matrix` of z with itself."""
  z_NxP = jnp.where(invalid_N[:, None], jnp.nan, z_NxP)
  z0_NxP = z_NxP if z0_NxP is None else z0_NxP
  return z_NxP, jnp.einsum("np,np->n", z_NxP, z0_NxP, precision=HIGHEST), spearman_matrix(z_NxP, z_NxP)


def _summary(values) -> tuple[int, float, float, str]:
  v = np.asarray(values, np.float64).ravel()
  v = v[np.isfinite(v)]
  if not len(v):
    return 0, float("nan"), float("nan"), NO_PAIR
  return len(v), float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else float("nan"), ""


class ModelSimilarity:
  """Collects the model RDMs of a streamed evaluation and computes the three analyses (module docstring).

  Call `add` for every checkpoint, layer, resolution and arm in checkpoint order (epoch 0 of a rule first), then
  `table` once. `add(..., keep=True)` keeps the RDMs for the rule-vs-rule comparison.
  """

  def __init__(self, *, rules, readout: str = "mean"):
    self.rules = list(rules)
    self.readout = readout
    self._rows: list[dict] = []
    self._epoch0: dict = {}  # (rule, layer, resolution, arm) -> N x P standardised ranks of epoch 0
    self._kept: dict = {}  # (epoch, layer, resolution, arm) -> {rule: N x P}

  def _row(self, analysis, rule_a, rule_b, epoch_a, epoch_b, layer, resolution, arm, seed_pairs, values):
    n, rho, sd, note = _summary(values)
    self._rows.append(
      dict(
        analysis=analysis,
        rule_a=rule_a,
        rule_b=rule_b,
        epoch_a=int(epoch_a),
        epoch_b=int(epoch_b),
        layer=layer,
        resolution=resolution,
        arm=arm,
        readout=self.readout,
        seed_pairs=seed_pairs,
        n_pairs=n,
        rho=rho,
        rho_sd=sd,
        dissimilarity=1.0 - rho,
        note=note,
      )
    )

  def add(
    self,
    *,
    rule: str,
    epoch: int,
    layer: str,
    resolution,
    arm: str,
    model_NxP=None,
    z_NxP=None,
    invalid_N=None,
    keep: bool = False,
  ) -> None:
    """One checkpoint's RDMs of one layer, resolution and arm: either the RDMs (`model_NxP`, upper triangles of
    `leut.evaluate.model_rdms`, ranked here) or their `standardised_ranks` (`z_NxP`, e.g. from
    `leut.evaluate.score_and_rank_rdms` on the all-pairs set), not both. Seeds in `invalid_N` (NaN in rsa.csv) are
    left out; `keep`: also compare them with the other rules' (rule_vs_rule)."""
    if (model_NxP is None) == (z_NxP is None):
      raise ValueError("ModelSimilarity.add: pass either model_NxP (the RDMs) or z_NxP (their standardised ranks)")
    z_NxP = standardised_ranks(jnp.asarray(model_NxP)) if z_NxP is None else jnp.asarray(z_NxP, jnp.float32)
    invalid_N = np.zeros(z_NxP.shape[0], bool) if invalid_N is None else np.asarray(invalid_N, bool)
    where = (layer, resolution, arm)
    if epoch == 0:
      self._epoch0 = {k: v for k, v in self._epoch0.items() if k[0] == rule}  # only this rule's baseline is kept
    z0 = self._epoch0.get((rule, *where)) if epoch != 0 else None
    z_NxP, drift_N, G_NxN = _compare(z_NxP, invalid_N, z0)
    if epoch == 0:
      self._epoch0[(rule, *where)] = z_NxP
    drift_N, G_NxN = jax.device_get((drift_N, G_NxN))
    if epoch == 0 or z0 is not None:
      self._row("drift_from_epoch0", rule, rule, epoch, 0, *where, "same_seed", drift_N)
    self._row("inter_seed", rule, rule, epoch, epoch, *where, "different_seeds", G_NxN[np.triu_indices(len(G_NxN), 1)])
    if keep:
      self._kept.setdefault((epoch, *where), {})[rule] = z_NxP

  def _rule_vs_rule(self) -> None:
    for (epoch, *where), by_rule in self._kept.items():
      order = [r for r in self.rules if r in by_rule] + [r for r in by_rule if r not in self.rules]
      for a, b in combinations(order, 2):
        C_NxM = np.asarray(spearman_matrix(by_rule[a], by_rule[b]), np.float64)
        n = min(C_NxM.shape)
        same = np.eye(*C_NxM.shape, dtype=bool)
        self._row("rule_vs_rule", a, b, epoch, epoch, *where, "different_seeds", C_NxM[~same])
        self._row("rule_vs_rule", a, b, epoch, epoch, *where, "same_seed", C_NxM[np.arange(n), np.arange(n)])

  def table(self) -> pd.DataFrame:
    """Every row (module docstring); the rule-vs-rule rows are computed here, once every rule has been added."""
    self._rule_vs_rule()
    self._kept.clear()
    return pd.DataFrame(self._rows, columns=COLUMNS)
