"""Workdirs for the report tests: one real tiny run (shared with tests/test_notebooks.py) and a CSV-only variant.

`tiny_workdir`: `leut run` on the quickstart with 5 seeds and a tiny network (≈1 min on one core), so the report is
exercised exactly as `leut run` calls it.
`rich_workdir`: the tiny run's CSVs, extended by hand with what a tiny run cannot afford: a second trained rule,
a second resolution and the upsampled arm, an effect every seed agrees on (backprop fc1–IT), and the optional
evaluation tables (noise_ceiling.csv, partial.csv, bootstrap.csv with made-up paired draws and the
bootstrap_differences.csv built from them, best_layer_cv.csv). The report reads only CSVs, so this is a
complete workdir.
"""

import json

import numpy as np
import pandas as pd
import pytest

from leut import cli
from leut.defaults import protocol_config
from leut.report import write_report
from leut.scoring import bootstrap_differences

TINY = [
  "--config.rules=untrained,backprop",
  "--config.seeds=5",
  "--config.epochs=2",
  "--config.milestones=0,1,2",
  "--config.model.widths=(4,8,8)",
  "--config.model.fc_dim=16",
  "--config.data.train_subset=64",
  "--config.eval.resolutions=32",
  "--config.eval.test_images=64",
  "--config.data.n_stimuli=40",
  "--config.report.figure_formats=png",  # the PDF copies: rich_workdir's (the default formats)
  "--no-progress",
]


def tiny_workdir_path(tmp_path_factory, synthetic_dir):
  """Create once per session, across pytest-xdist workers too (also used by tests/test_notebooks.py)."""
  from tests.helpers import shared_dir

  def make(root):
    rc = cli.main(
      [
        "run",
        "experiments/quickstart.py",
        "--workdir",
        str(root / "wd"),
        f"--config.data.synthetic_dir={synthetic_dir}",
      ]
      + TINY
    )
    assert rc == 0

  return shared_dir(tmp_path_factory, "tiny_report_wd", make) / "wd"


@pytest.fixture(scope="session")
def tiny_workdir(tmp_path_factory, synthetic_dir):
  return tiny_workdir_path(tmp_path_factory, synthetic_dir)


BOOST = 0.3  # added to backprop fc1-IT at the last epoch: every seed agrees, so the one-sided p sits at 1/32


def enrich(src, dst):
  """Copy a workdir's config and CSVs to `dst` and extend them (see module docstring)."""
  (dst / "results").mkdir(parents=True)
  cfg = json.loads((src / "config.json").read_text())
  cfg["rules"] = ["untrained", "backprop", "feedback_alignment"]
  cfg["eval"]["resolutions"] = [32, 64]
  cfg["eval"]["upsampled"] = True
  cfg["command"] = "leut run experiments/quickstart.py --workdir RICH"
  cfg["report"]["figure_formats"] = list(protocol_config().report.figure_formats)  # the default: PNG and PDF
  (dst / "config.json").write_text(json.dumps(cfg))
  rng = np.random.default_rng(0)
  rsa = pd.read_csv(src / "results" / "rsa.csv")
  last = rsa.epoch.max()
  hit = (rsa.rule == "backprop") & (rsa.epoch == last) & (rsa.layer == "fc1") & (rsa.roi == "IT")
  rsa.loc[hit, "rho"] += BOOST
  fa = rsa[rsa.rule == "backprop"].copy()
  fa["rule"] = "feedback_alignment"
  trained = fa.epoch > 0
  fa.loc[trained, "rho"] = fa.loc[trained, "rho"] * 0.5 + rng.normal(0, 0.01, trained.sum())
  rsa = pd.concat([rsa, fa])
  arms = [rsa]
  for px, arm, shift in ((64, "native", 0.01), (32, "upsampled", -0.005), (64, "upsampled", 0.004)):
    extra = rsa[(rsa.resolution == 32) & (rsa.arm == "native")].copy()
    extra["resolution"], extra["arm"] = px, arm
    extra["rho"] = extra["rho"] + shift + rng.normal(0, 0.002, len(extra))
    arms.append(extra)
  rsa = pd.concat(arms, ignore_index=True)
  rsa.to_csv(dst / "results" / "rsa.csv", index=False)
  for name in ("accuracy", "weights"):
    df = pd.read_csv(src / "results" / f"{name}.csv")
    fa = df[df.rule == "backprop"].copy()
    fa["rule"] = "feedback_alignment"
    pd.concat([df, fa]).to_csv(dst / "results" / f"{name}.csv", index=False)
  rois = list(dict.fromkeys(rsa.roi))
  pd.DataFrame(
    {
      "roi": rois * 2,
      "pairs": ["all"] * len(rois) + ["cross_run"] * len(rois),
      "n_subjects": 3,
      "lower": 0.02,
      "upper": 0.09,
      "p_lower": np.nan,
    }
  ).to_csv(dst / "results" / "noise_ceiling.csv", index=False)
  base = rsa[(rsa.subject != "mean") & (rsa.resolution == 32) & (rsa.arm == "native")]
  parts = []
  for control in ("pixel", "luminance", "all"):
    p = base.drop(columns=["note"]).assign(control=control)
    p["rho_partial"] = p["rho"] - 0.003 + rng.normal(0, 0.001, len(p))
    p["rho_partial_textbook"] = p["rho"] - 0.004 + rng.normal(0, 0.001, len(p))
    parts.append(p)
  pd.concat(parts).to_csv(dst / "results" / "partial.csv", index=False)
  keys = ["rule", "epoch", "step", "layer", "roi", "resolution", "arm", "pairs"]
  boot = base.groupby(keys, as_index=False).rho.mean()
  boot = boot.assign(n_boot=1000, n_undefined=0, ci_lo=boot.rho - 0.02, ci_hi=boot.rho + 0.02)
  boot.to_csv(dst / "results" / "bootstrap.csv", index=False)
  draws = (
    boot.rho.to_numpy()[:, None] + 0.02 * rng.standard_normal(1000) + 0.004 * rng.standard_normal((len(boot), 1000))
  )
  diffs = bootstrap_differences.difference_table(boot, draws, rules=cfg["rules"])
  diffs.to_csv(dst / "results" / "bootstrap_differences.csv", index=False)
  cv = pd.read_csv(src / "results" / "best_layer_cv.csv")
  fa = cv[cv.rule == "backprop"].copy()
  fa["rule"] = "feedback_alignment"
  pd.concat([cv, fa]).to_csv(dst / "results" / "best_layer_cv.csv", index=False)
  return dst


@pytest.fixture(scope="session")
def rich_workdir(tiny_workdir, tmp_path_factory):
  wd = enrich(tiny_workdir, tmp_path_factory.mktemp("rich"))
  write_report(wd, cli._workdir_config(wd, []))
  return wd
