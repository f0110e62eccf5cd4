"""The report on workdirs a tiny run does not make: 32 seeds (Monte Carlo sign flips), no trained rule, no
untrained rule. CSV-only workdirs, generated here."""

import json

import numpy as np
import pandas as pd
import pytest

from leut import cli
from leut.report import inference, write_report

LAYERS = ("conv1", "conv2", "conv3", "fc1")
ROIS = ("V1", "IT")


def fake_workdir(wd, tiny_workdir, *, rules, seeds, epochs=(0, 1, 2), boost=0.05):
  """rsa/accuracy/weights CSVs with a known structure: backprop raises fc1-IT by `boost` in every seed."""
  rng = np.random.default_rng(1)
  (wd / "results").mkdir(parents=True)
  cfg = json.loads((tiny_workdir / "config.json").read_text())
  cfg.update(rules=list(rules), seeds=seeds, milestones=list(epochs), epochs=max(epochs))
  cfg["data"]["rois"] = list(ROIS)
  (wd / "config.json").write_text(json.dumps(cfg))
  rows, acc, w = [], [], []
  for rule in rules:
    for epoch in epochs if rule != "untrained" else (0,):
      for seed in range(seeds):
        acc.append(dict(rule=rule, seed=seed, epoch=epoch, step=epoch * 2, accuracy=0.1 + 0.1 * epoch))
        for layer in LAYERS:
          w.append(dict(rule=rule, seed=seed, epoch=epoch, layer=layer, rel_displacement=0.1 * epoch))
          for roi in ROIS:
            base = 0.05 if (layer, roi) == ("conv1", "V1") else 0.0
            lift = boost * epoch / max(epochs) if (rule, layer, roi) == ("backprop", "fc1", "IT") else 0.0
            seed_effect = 0.01 * np.sin(seed)
            for subj in ("sub-01", "sub-02", "sub-03", "mean"):
              rho = base + lift + seed_effect + 0.002 * rng.normal() + 0.01 * rng.normal() * (epoch > 0)
              rows.append(
                dict(
                  rule=rule,
                  seed=seed,
                  epoch=epoch,
                  step=epoch * 2,
                  layer=layer,
                  roi=roi,
                  subject=subj,
                  resolution=32,
                  arm="native",
                  pairs="all",
                  rho=rho,
                  note=np.nan,
                )
              )
  pd.DataFrame(rows).to_csv(wd / "results" / "rsa.csv", index=False)
  pd.DataFrame(acc).to_csv(wd / "results" / "accuracy.csv", index=False)
  pd.DataFrame(w).to_csv(wd / "results" / "weights.csv", index=False)
  write_report(wd, cli._workdir_config(wd, []))
  return wd


def test_32_seeds_report_the_monte_carlo_floor(tmp_path, tiny_workdir):
  wd = fake_workdir(tmp_path / "wd", tiny_workdir, rules=("untrained", "backprop"), seeds=32)
  t = pd.read_csv(wd / "results" / "tests_vs_untrained.csv").set_index("roi")
  assert (t.method == "monte_carlo").all() and (t.n_seeds == 32).all()
  floor = 1 / (1 + inference.N_MC)
  assert t.p_floor.to_numpy() == pytest.approx(floor)
  assert t.loc["IT", "p"] == pytest.approx(floor) and t.loc["IT", "floored"]
  text = (wd / "summary.md").read_text()
  assert f"p = {floor:.3g} is the smallest attainable with 32 seeds and Monte Carlo sign flips" in text
  assert "exact enumeration would allow 4.66e-10" in text  # 2 * 2^-32, two-sided


def test_untrained_only(tmp_path, tiny_workdir):
  wd = fake_workdir(tmp_path / "wd", tiny_workdir, rules=("untrained",), seeds=3)
  assert (wd / "figures" / "alignment.png").exists() and (wd / "summary.md").exists()
  assert pd.read_csv(wd / "results" / "ground_truth.csv").check.tolist() == ["a", "c"]


def test_without_an_untrained_rule_epoch_0_is_the_baseline(tmp_path, tiny_workdir):
  wd = fake_workdir(tmp_path / "wd", tiny_workdir, rules=("backprop",), seeds=5, boost=0.5)
  t = pd.read_csv(wd / "results" / "tests_vs_untrained.csv").set_index("roi")
  assert (t.rule_b == "backprop").all() and (t.epoch_b == 0).all()
  assert t.loc["IT", "p"] == 2 / 32 and t.loc["IT", "floored"]
