"""The model-to-model section of the report: its figure and the summary rows, read from model_similarity.csv."""

import numpy as np
import pandas as pd

from leut.report import model_comparisons


def test_tiny_run_draws_the_figure_and_cites_the_table(tiny_workdir):
  assert (tiny_workdir / "figures" / "model_similarity.png").is_file()
  summary = (tiny_workdir / "summary.md").read_text()
  section = summary.split("## Model-to-model RDM similarity")[1].split("\n## ")[0]
  assert "Source: `results/model_similarity.csv` where resolution=32, arm=native, epoch_a=2" in section
  sim = pd.read_csv(tiny_workdir / "results" / "model_similarity.csv")
  want = sim[(sim.analysis == "drift_from_epoch0") & (sim.epoch_a == 2) & (sim.layer == "conv3")].rho.iloc[0]
  assert f"| drift_from_epoch0 | backprop | conv3 | 2 | 0 | 32 | native | 5 | {want:.3f} |" in section


def test_the_heatmap_diagonal_is_inter_seed_and_off_diagonal_rule_vs_rule():
  rows = [
    dict(analysis="inter_seed", rule_a="a", rule_b="a", epoch_a=1, layer="l", seed_pairs="different_seeds", rho=0.5),
    dict(analysis="inter_seed", rule_a="b", rule_b="b", epoch_a=1, layer="l", seed_pairs="different_seeds", rho=0.4),
    dict(analysis="rule_vs_rule", rule_a="a", rule_b="b", epoch_a=1, layer="l", seed_pairs="different_seeds", rho=0.2),
    dict(analysis="rule_vs_rule", rule_a="a", rule_b="b", epoch_a=1, layer="l", seed_pairs="same_seed", rho=0.9),
  ]
  m = model_comparisons._matrix(pd.DataFrame(rows), ["a", "b", "c"], "l", 1)
  np.testing.assert_allclose(m[:2, :2], [[0.5, 0.2], [0.2, 0.4]])
  assert np.isnan(m[2]).all()
