"""Paired bootstrap differences: the CI and p equal a float64 NumPy computation from the same draws, identical
conditions differ by exactly 0 with p = 1, and the contrasts are the documented ones."""

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.multitest import multipletests

from leut.evaluate import model_rdms
from leut.scoring import bootstrap_differences as bd
from leut.scoring import stimulus_stats
from tests.report.tiny_brain import Brain
from tests.report.tiny_brain import correlation_rdm as _rdm

B = 999


def _boot_table(rng):
  """bootstrap.csv-like rows (untrained at 0; backprop and feedback_alignment at 0, 2, 5; two ROIs) and draws that
  share a per-resample component (which stimuli were drawn), as paired draws do."""
  rows, draws = [], []
  common_B = 0.02 * rng.standard_normal(B)
  for rule, epochs in (("untrained", [0]), ("backprop", [0, 2, 5]), ("feedback_alignment", [0, 2, 5])):
    for epoch in epochs:
      for roi, layer in (("V1", "conv1"), ("IT", "fc1")):
        shift = 0.0 if epoch == 0 else 0.01 * epoch * (1 if rule == "backprop" else -1)
        d = 0.1 + shift + common_B + 0.003 * rng.standard_normal(B)
        rows.append(
          dict(
            rule=rule,
            epoch=epoch,
            step=4 * epoch,
            layer=layer,
            roi=roi,
            resolution=32,
            arm="native",
            pairs="all",
            n_boot=B,
            rho=float(d.mean()),
            ci_lo=np.nan,
            ci_hi=np.nan,
          )
        )
        draws.append(d)
  return pd.DataFrame(rows), np.stack(draws)


def _numpy_reference(d_B):
  lo, hi = np.quantile(d_B, [0.025, 0.975])
  p = min(1.0, (2 * min(np.sum(d_B <= 0), np.sum(d_B >= 0)) + 1) / (len(d_B) + 1))
  return lo, hi, p


def test_difference_ci_and_p_equal_a_float64_numpy_computation():
  boot, draws_CxB = _boot_table(np.random.default_rng(0))
  diffs = bd.difference_table(boot, draws_CxB, rules=["untrained", "backprop", "feedback_alignment"])
  assert list(diffs.columns) == bd.DIFFERENCE_COLUMNS
  at = {(r.rule, r.epoch, r.roi): i for i, r in boot.iterrows()}
  for _, row in diffs.iterrows():
    a, b = at[(row.rule_a, row.epoch_a, row.roi)], at[(row.rule_b, row.epoch_b, row.roi)]
    lo, hi, p = _numpy_reference(draws_CxB[a] - draws_CxB[b])
    assert row.ci_lo == pytest.approx(lo, rel=0, abs=1e-14) and row.ci_hi == pytest.approx(hi, rel=0, abs=1e-14)
    assert row.p == pytest.approx(p, rel=1e-14)  # equal up to float64 rounding (XLA divides via a reciprocal)
    assert row["diff"] == pytest.approx(boot.rho[a] - boot.rho[b], abs=1e-15)
  # backprop rises by 0.05 at epoch 5: far outside the noise of a paired difference (the shared part cancels)
  top = diffs[(diffs.contrast == "vs_untrained") & (diffs.rule_a == "backprop") & (diffs.epoch_a == 5)]
  assert (top.ci_lo > 0).all() and (top.p == 1 / (B + 1)).all()
  for _, g in diffs.groupby("contrast"):
    np.testing.assert_allclose(g.p_fdr, multipletests(g.p, method="fdr_bh")[1], rtol=1e-6)


def test_contrasts_are_the_documented_ones():
  boot, draws_CxB = _boot_table(np.random.default_rng(1))
  diffs = bd.difference_table(boot, draws_CxB, rules=["untrained", "backprop", "feedback_alignment"])
  got = {(r.contrast, r.rule_a, r.epoch_a, r.rule_b, r.epoch_b) for r in diffs.itertuples()}
  want = {("vs_untrained", r, e, "untrained", 0) for r in ("backprop", "feedback_alignment") for e in (2, 5)}
  want |= {("between_rules", "backprop", e, "feedback_alignment", e) for e in (2, 5)}
  want |= {("vs_previous_epoch", r, 5, r, 2) for r in ("backprop", "feedback_alignment")}
  assert got == want
  assert len(diffs) == 2 * len(want)  # both ROIs
  # without an untrained rule the first rule's epoch 0 (the same network) is the baseline
  no_base = bd.difference_table(boot[boot.rule != "untrained"], draws_CxB[(boot.rule != "untrained").to_numpy()])
  vs = no_base[no_base.contrast == "vs_untrained"]
  assert set(vs.rule_b) == {"backprop"} and set(vs.epoch_b) == {0} and set(vs.epoch_a) == {2, 5}


def test_identical_conditions_differ_by_exactly_zero_with_p_one(tmp_path):
  rng = np.random.default_rng(2)
  S = 16
  brain = Brain(
    np.stack([np.stack([_rdm(rng.normal(size=(S, 4))) for _ in range(2)])]).astype(np.float32),
    ("V1",),
    ("sub-01", "sub-02"),
  )
  masks = {"all": np.ones((S, S), bool)}
  feats = rng.normal(size=(3, S, 5)).astype(np.float32)
  other = feats + 0.5 * rng.normal(size=feats.shape).astype(np.float32)
  rows, draws = [], []
  for rule, epoch, f in (
    ("untrained", 0, feats),
    ("backprop", 0, feats),
    ("backprop", 1, feats),
    ("feedback_alignment", 1, other),
  ):
    r, d = stimulus_stats.bootstrap_draws(
      rule=rule,
      epoch=epoch,
      step=epoch,
      layer="conv1",
      model_NxSxS=model_rdms(f),
      brain=brain,
      masks=masks,
      resolution=16,
      arm="native",
      n_boot=200,
    )
    rows += r
    draws += d
  boot, draws_CxB = pd.DataFrame(rows), np.stack(draws)
  # separate calls share the resample indices: the same features give bit-identical draws
  np.testing.assert_array_equal(draws_CxB[0], draws_CxB[2])
  diffs = bd.difference_table(boot, draws_CxB).set_index(["contrast", "rule_a", "rule_b"])
  same = diffs.loc[("vs_untrained", "backprop", "untrained")]
  assert same.ci_lo == 0.0 and same.ci_hi == 0.0 and same.p == 1.0 and same["diff"] == 0.0
  moved = diffs.loc[("vs_untrained", "feedback_alignment", "untrained")]
  assert moved.ci_lo < moved.ci_hi and moved.p < 1.0
  bd.save_draws(tmp_path / "d.npz", boot, draws_CxB)
  keys, back = bd.load_draws(tmp_path / "d.npz")
  np.testing.assert_array_equal(back, draws_CxB)
  pd.testing.assert_frame_equal(keys, boot[bd.KEY_COLUMNS], check_dtype=False)
