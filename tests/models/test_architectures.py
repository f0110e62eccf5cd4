"""`leut run` on other architectures, every condition of the quickstart: a 5-block CNN and a residual network are
trained, scored layer by layer (conv1 … conv5 / res units, fc1) and reported with every ROI at a depth-aware
default layer."""

import pandas as pd
import pytest

from leut import cli
from leut.report import tables
from tests.test_end_to_end import TINY

FAST = [  # the statistics beyond rsa.csv are tested elsewhere; here only the architecture axis
  "--config.eval.n_boot=0",
  "--config.eval.best_layer_splits=0",
  "--config.eval.partial_controls=()",
  "--config.eval.pairs=all",
]
CONDITIONS = ["untrained", "backprop", "feedback_alignment", "predictive_coding", "stdp"]


@pytest.mark.parametrize(
  "model,layers,headline",
  [
    (
      ["--config.model.widths=(16,16,32,32,64)"],
      ["conv1", "conv2", "conv3", "conv4", "conv5", "fc1"],
      {"V1": "conv1", "V2": "conv1", "LOC": "conv5", "IT": "fc1"},
    ),
    (
      ["--config.model.name=resnet", "--config.model.widths=(4,8)"],
      ["conv1", "res1", "res2", "fc1"],
      {"V1": "conv1", "V2": "conv1", "LOC": "res2", "IT": "fc1"},
    ),
  ],
  ids=["cnn5", "resnet"],
)
def test_every_condition_trains_and_is_scored_on_every_layer(tmp_path, synthetic_dir, model, layers, headline):
  wd = tmp_path / "run"
  args = ["run", "experiments/quickstart.py", "--workdir", str(wd), f"--config.data.synthetic_dir={synthetic_dir}"]
  assert cli.main(args + TINY + FAST + model) == 0
  rsa = pd.read_csv(wd / "results" / "rsa.csv")
  assert sorted(set(rsa.rule)) == sorted(CONDITIONS)
  for rule in CONDITIONS:
    assert sorted(set(rsa[rsa.rule == rule].layer)) == sorted(layers), rule
  assert rsa.rho.notna().all()
  alignment = pd.read_csv(wd / "results" / "alignment.csv")  # the headline table: every ROI, at its default layer
  assert dict(alignment[["roi", "layer"]].drop_duplicates().itertuples(index=False)) == headline


def test_default_layer_for_roi_follows_the_depth_and_keeps_unknown_rois():
  assert tables.default_layer_for_roi(("conv1", "conv2", "conv3", "fc1")) == {
    "V1": "conv1",
    "V2": "conv1",
    "V3": "conv2",
    "V4": "conv2",
    "hV4": "conv2",
    "LOC": "conv3",
    "IT": "fc1",
  }  # fmt: skip  (paper A, PROTOCOL §1.4)
  eight = tuple(f"conv{i}" for i in range(1, 9)) + ("fc1",)
  assert tables.default_layer_for_roi(eight) | {} == {
    "V1": "conv1", "V2": "conv1", "V3": "conv5", "V4": "conv5", "hV4": "conv5", "LOC": "conv8", "IT": "fc1"
  }  # fmt: skip
  assert set(tables.default_layer_for_roi(("conv1", "fc1")).values()) == {"conv1", "fc1"}
  with pytest.warns(tables.UnmappedROIWarning, match="'FFA'.*conv3"):
    mapping = tables.default_layer_for_roi(("conv1", "conv2", "conv3", "fc1"), rois=["V1", "FFA"])
  assert mapping["FFA"] == "conv3"
