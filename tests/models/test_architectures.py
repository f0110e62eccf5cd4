"""`leut run` on other architectures: a 5-block CNN and a residual network are trained, scored layer by layer
(conv1 … conv5 / res units, fc1) and reported with every ROI at a depth-aware default layer.

The untrained network and backprop carry the pipeline; that every rule trains and reads out every architecture is
`tests/rules/test_all_rules.py::test_every_rule_trains_every_architecture_or_refuses_it_clearly`."""

import importlib.util

import pandas as pd
import pytest
from scipy import stats

from leut import cli
from leut.report import tables
from tests.helpers import PLUMBING_RUN
from tests.test_end_to_end import TINY

FAST = ["--config.epochs=1", "--config.milestones=0,1", *PLUMBING_RUN]
CONDITIONS = ["untrained", "backprop"]


RUNS = {
  "cnn5": (
    ["--config.model.widths=(16,16,32,32,64)"],
    ["conv1", "conv2", "conv3", "conv4", "conv5", "fc1"],
    {"V1": "conv1", "V2": "conv1", "LOC": "conv5", "IT": "fc1"},
  ),
  "resnet": (
    ["--config.model.name=resnet", "--config.model.widths=(4,8)"],
    ["conv1", "res1", "res2", "fc1"],
    {"V1": "conv1", "V2": "conv1", "LOC": "res2", "IT": "fc1"},
  ),
}


@pytest.fixture(scope="module")
def workdirs(tmp_path_factory, synthetic_dir):
  """One tiny `leut run` of the quickstart per architecture (shared by the tests below)."""
  out = {}
  for arch, (model, _, _) in RUNS.items():
    wd = out[arch] = tmp_path_factory.mktemp(arch)
    args = ["run", "experiments/quickstart.py", "--workdir", str(wd), f"--config.data.synthetic_dir={synthetic_dir}"]
    assert cli.main(args + TINY + FAST + model + [f"--config.rules={','.join(CONDITIONS)}"]) == 0
  return out


@pytest.mark.parametrize("arch", RUNS)
def test_every_condition_trains_and_is_scored_on_every_layer(workdirs, arch):
  _, layers, headline = RUNS[arch]
  rsa = pd.read_csv(workdirs[arch] / "results" / "rsa.csv")
  assert sorted(set(rsa.rule)) == sorted(CONDITIONS)
  for rule in CONDITIONS:
    assert sorted(set(rsa[rsa.rule == rule].layer)) == sorted(layers), rule
  assert rsa.rho.notna().all()
  alignment = pd.read_csv(workdirs[arch] / "results" / "alignment.csv")  # headline: every ROI at its default layer
  assert dict(alignment[["roi", "layer"]].drop_duplicates().itertuples(index=False)) == headline


def test_depth_experiment_combines_architectures_with_seed_level_tests(workdirs, tmp_path):
  """experiments/depth.py's combining step on two finished workdirs: alignment over epochs per architecture, the
  first-epoch change, and the tests (sign-flip per architecture, Welch across architectures), plus its figure."""
  spec = importlib.util.spec_from_file_location("depth_experiment", "experiments/depth.py")
  depth = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(depth)
  out = depth.combine(workdirs, tmp_path, reference="cnn5")
  assert set(out["alignment"].architecture) == {"cnn5", "resnet"}
  drop = out["first_epoch_drop"]
  assert set(zip(drop.architecture, drop.roi, drop.layer)) >= {("cnn5", "V1", "conv1"), ("resnet", "LOC", "res2")}
  tests = out["tests"]
  # milestones 0, 1: one epoch >= 1 is too few for a trend test (families.MIN_TREND_EPOCHS), so none is made
  assert set(tests.family) == {"epoch1_vs_0", "drop_vs_cnn5"}
  welch = tests[tests.family == "drop_vs_cnn5"]
  assert set(welch.architecture) == {"resnet"} and len(welch) == 4  # 1 trained rule x 4 ROIs
  # the Welch row is scipy's test of the two sets of per-seed changes, recomputed here from the workdirs' rsa.csv
  row = welch[(welch.rule_a == "backprop") & (welch.roi == "V1")].iloc[0]
  changes = {}
  for arch in ("resnet", "cnn5"):
    rsa = pd.read_csv(workdirs[arch] / "results" / "rsa.csv")
    v = rsa[(rsa.rule == "backprop") & (rsa.roi == "V1") & (rsa.layer == "conv1") & (rsa.subject != "mean")]
    v = v[(v.resolution == 32) & (v.pairs == "all") & (v.arm == "native")]
    by_seed = v.groupby(["seed", "epoch"]).rho.mean().unstack()
    changes[arch] = (by_seed[1] - by_seed[0]).to_numpy()
  assert row.p == pytest.approx(stats.ttest_ind(changes["resnet"], changes["cnn5"], equal_var=False).pvalue)
  assert (tmp_path / "depth_alignment.png").is_file() and (tmp_path / "depth_tests.csv").is_file()


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
