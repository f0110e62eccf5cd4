"""The headline contrasts by three inferences side by side: labels, the same estimate from each, each inference's
numbers taken from its own table, and a between-rules pair listed in the other order turned round."""

import numpy as np
import pandas as pd

from leut.report import contrast_inference as ci


def test_tiny_run_puts_the_three_inferences_side_by_side(tiny_workdir):
  res = tiny_workdir / "results"
  t = pd.read_csv(res / "contrast_inference.csv")
  assert list(t.columns) == ci.COLUMNS
  vs = t[t.family == "vs_untrained"]
  assert len(vs) == 3 * 4  # backprop at the last milestone vs untrained, 4 ROIs, three inferences each
  assert dict(zip(vs.inference, vs.generalises_over)) == ci.INFERENCES
  for _, g in vs.groupby("roi"):
    np.testing.assert_allclose(g.estimate, g.estimate.iloc[0], atol=1e-6)  # 5 valid seeds: one mean difference
  two = pd.read_csv(res / "two_level_bootstrap.csv").set_index(["contrast", "rule_a", "epoch_a", "roi", "pairs"])
  stim = pd.read_csv(res / "bootstrap_differences.csv").set_index(["contrast", "rule_a", "epoch_a", "roi", "pairs"])
  for _, r in vs[vs.inference != "sign_flip"].iterrows():
    src = two if r.inference == "two_level_bootstrap" else stim
    want = src.loc[("vs_untrained", r.rule_a, r.epoch_a, r.roi, "all")]
    np.testing.assert_allclose([r.ci_lo, r.ci_hi, r.p], [want.ci_lo, want.ci_hi, want.p])
  flip = pd.read_csv(res / "tests_vs_untrained.csv").set_index("roi")
  sf = vs[vs.inference == "sign_flip"].set_index("roi")
  np.testing.assert_allclose(sf.p, flip.p.loc[sf.index])
  assert sf.ci_lo.isna().all()  # a sign-flip test gives no interval
  # epoch 1 is not bootstrapped under stats_epochs=first_last: its bootstrap rows are there, empty
  e1 = t[(t.family == "epoch1_vs_0") & (t.inference != "sign_flip")]
  assert len(e1) == 8 and e1.estimate.isna().all()
  text = (tiny_workdir / "summary.md").read_text()
  assert "## The headline contrasts by three inferences" in text
  below = {i: int((g.p_fdr < 0.05).sum()) for i, g in vs.groupby("inference")}
  assert (
    f"vs_untrained: {below['sign_flip']} of 4 by the sign flip (seeds), {below['stimulus_bootstrap']} of 4 by the "
    f"stimulus bootstrap (stimuli), {below['two_level_bootstrap']} of 4 by the two level bootstrap (seeds and stimuli)"
  ) in text


def test_a_between_rules_pair_in_the_other_order_is_turned_round():
  families = {
    "between_rules": pd.DataFrame(
      [dict(rule_a="fa", epoch_a=2, rule_b="backprop", epoch_b=2, roi="V1", layer="conv1", n_seeds=5, mean_diff=-0.1)]
    ).assign(p=0.06, p_fdr=0.06)
  }
  diffs = pd.DataFrame(
    [
      dict(
        contrast="between_rules",
        rule_a="backprop",
        epoch_a=2,
        rule_b="fa",
        epoch_b=2,
        roi="V1",
        layer="conv1",
        resolution=32,
        arm="native",
        pairs="all",
        n_boot=1000,
        diff=0.1,
        ci_lo=0.02,
        ci_hi=0.3,
        p=0.01,
        p_fdr=0.02,
      )
    ]
  )
  t = ci.table(families, diffs, None, None).set_index("inference")
  row = t.loc["stimulus_bootstrap"]
  np.testing.assert_allclose([row.estimate, row.ci_lo, row.ci_hi, row.p], [-0.1, -0.3, -0.02, 0.01])
  assert np.isnan(t.loc["two_level_bootstrap", "estimate"])  # no two-level table: the row says so with NaN
