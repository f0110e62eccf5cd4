"""Does supervised training degrade early-visual alignment more slowly in deeper networks? (paper B's open question)

Paper B ends: "the prediction would be that deeper models show the same pattern [backprop destroying V1 alignment
within one epoch, local rules degrading less] but more slowly". This runs every condition of the quickstart on the
embedded synthetic default for four architectures and compares how fast alignment changes, per ROI:

    cnn3    the protocol CNN, conv 32/64/128, a pool after every block
    cnn5    5 conv blocks 16/32/32/64/128, pools after blocks 2, 4, 5 (the default schedule)
    cnn8    8 conv blocks 16/16/32/32/32/64/64/128, pools after blocks 3, 6, 8
    resnet  a CIFAR-style residual network: stem 32, three stages 32/64/128 of one residual unit each

Every architecture keeps a 128-channel last block (fc1 reads the same 4x4x128 map at 32 px); the deeper CNNs are
narrower early so that a step costs about as much as the protocol's. V1/V2 are scored at the first block, LOC at
the last block, IT at fc1 (`leut.report.tables.default_layer_for_roi`).

Command (from the repository root; one workdir per architecture, resumable, then one combined table and figure):

    python experiments/depth.py workdirs/depth
    leut run experiments/depth.py:cnn5 --workdir workdirs/depth/cnn5        # one architecture on its own

Runtime on 2 CPU cores: 38 min 22 s (2026-11-30, with other work partly sharing the cores; predictive coding and
STDP are about two thirds of it, the ResNet's PC readout the slowest evaluation).
`python experiments/depth.py DIR --tiny` runs a minutes-long smoke version (tiny widths and data).

Outputs in the root folder, beside the four workdirs (each with its own full report):

  depth_alignment.csv         per architecture, rule, ROI and epoch: mean ρ over seeds, SD, 95% t-interval
  depth_first_epoch_drop.csv  per architecture, rule and ROI: ρ(epoch 1) − ρ(epoch 0), 95% t-interval, drop %
  depth_tests.csv             seed-level tests: 'epoch1_vs_0' (exact sign-flip, paired by seed) and 'trend'
                              (per-seed Spearman(epoch, ρ) against 0) per architecture, BH over all
                              architectures; 'drop_vs_cnn3' (Welch t-test of the per-seed epoch-1 change against
                              the protocol CNN's: different networks, so unpaired), BH within the family
  depth_alignment.png         alignment against epoch per ROI (rows) and rule (columns), a line per architecture

What it found (README, "Networks", has the numbers): conv1-V1 falls in the first epoch under every rule and in every
architecture, less in the 5- and 8-block CNNs than in the 3-block one, but no difference survives the BH correction
(3 seeds); within an architecture the rules fall by nearly the same amount, so the architecture rather than the rule
sets the size of the drop on this data.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import ml_collections

from leut.defaults import protocol_config

ARCHITECTURES = {
  "cnn3": dict(widths=(32, 64, 128)),
  "cnn5": dict(widths=(16, 32, 32, 64, 128)),
  "cnn8": dict(widths=(16, 16, 32, 32, 32, 64, 64, 128)),
  "resnet": dict(name="resnet", widths=(32, 64, 128), units_per_stage=1),
}
TINY_WIDTHS = {"cnn3": (4, 8, 8), "cnn5": (4, 4, 8, 8, 8), "cnn8": (4,) * 6 + (8, 8), "resnet": (4, 8)}
REFERENCE = "cnn3"


def get_config(arg: str = "cnn3") -> ml_collections.ConfigDict:
  """`arg` = an architecture name (`ARCHITECTURES`), optionally ',tiny' for the smoke version."""
  arch, _, scale = arg.partition(",")
  if arch not in ARCHITECTURES:
    raise ValueError(f"experiments/depth.py:{arg}: unknown architecture {arch!r}; use one of {list(ARCHITECTURES)}")
  config = protocol_config()
  config.rules = ["untrained", "backprop", "feedback_alignment", "predictive_coding", "stdp"]
  config.rule_hparams = ml_collections.ConfigDict(
    {"predictive_coding": {"inference_steps": 4}, "stdp": {"time_steps": 3}}
  )  # as the quickstart: fewer inference steps / spike time steps keep the local rules within a laptop budget
  config.seeds = 3
  config.epochs = 5
  config.milestones = [0, 1, 2, 5]
  config.batch_size = 32
  config.data.source = "synthetic"
  config.data.train_subset = 1024
  config.data.rois = ["V1", "V2", "LOC", "IT"]
  config.eval.resolutions = [64]
  config.eval.test_images = 1000
  config.model.update(ARCHITECTURES[arch])
  if scale == "tiny":
    config.model.widths = TINY_WIDTHS[arch]
    config.model.fc_dim = 16
    config.seeds = 2
    config.epochs = 2
    config.milestones = [0, 1, 2]
    config.data.train_subset = 64
    config.data.n_stimuli = 40
    config.eval.resolutions = [32]
    config.eval.test_images = 64
    config.eval.n_boot = 0
    config.eval.best_layer_splits = 0
    config.eval.partial_controls = ()
  elif scale:
    raise ValueError(f"experiments/depth.py:{arg}: the only option after the architecture is ',tiny'")
  return config


def _per_seed(workdir: Path):
  import pandas as pd

  from leut import config as config_lib
  from leut.report import tables

  config = config_lib.with_defaults(json.loads((workdir / "config.json").read_text()))
  rsa = pd.read_csv(workdir / "results" / "rsa.csv")
  return tables.seed_scores(tables.headline_view(rsa, config))


def combine(workdirs: dict[str, Path], out: Path, reference: str = REFERENCE) -> dict:
  """Combine finished workdirs (architecture name -> workdir) into the tables and figure listed in the docstring."""
  import numpy as np
  import pandas as pd
  from scipy import stats as sps

  from leut.report import families, seed_stats, tables

  out.mkdir(parents=True, exist_ok=True)
  per_seed = {arch: _per_seed(Path(wd)) for arch, wd in workdirs.items()}
  tag = lambda df, arch: df.assign(architecture=arch)[["architecture"] + list(df.columns)]  # noqa: E731
  alignment = pd.concat([tag(tables.across_seeds(ps), a) for a, ps in per_seed.items()], ignore_index=True)
  drop = pd.concat([tag(tables.first_epoch_drop(ps), a) for a, ps in per_seed.items()], ignore_index=True)
  tests = []
  for arch, ps in per_seed.items():
    for family in (families.epoch1_vs_0, families.trend):
      tests.append(tag(family(ps), arch))
  tests = pd.concat(tests, ignore_index=True)
  for family in ("epoch1_vs_0", "trend"):  # BH over every architecture's tests of the family
    rows = tests.family == family
    tests.loc[rows, "p_fdr"] = seed_stats.fdr(tests.loc[rows, "p"].to_numpy(float))
  welch = []
  if reference in per_seed:
    for arch, ps in per_seed.items():
      if arch == reference:
        continue
      for rule in tables.trained_rules(ps):
        for roi in dict.fromkeys(ps.roi):
          deltas = {}
          for name in (arch, reference):
            sub = per_seed[name]
            if rule not in set(sub.rule):
              continue
            seeds = sorted(set(sub.seed))
            e1 = int(min(e for e in set(sub.loc[sub.rule == rule, "epoch"]) if e > 0))
            d = tables.seed_vector(sub, rule, e1, roi, seeds) - tables.seed_vector(sub, rule, 0, roi, seeds)
            deltas[name] = d[np.isfinite(d)]
          if len(deltas) < 2 or min(len(v) for v in deltas.values()) < 2:
            continue
          t = sps.ttest_ind(deltas[arch], deltas[reference], equal_var=False)
          welch.append(
            dict(
              architecture=arch,
              family=f"drop_vs_{reference}",
              rule_a=rule,
              roi=roi,
              n_seeds=len(deltas[arch]),
              mean_diff=float(deltas[arch].mean() - deltas[reference].mean()),
              p=float(t.pvalue),
              method="welch_t",
              statistic="(rho_e1 - rho_e0)_arch - (rho_e1 - rho_e0)_reference",
            )
          )
  if welch:
    welch = pd.DataFrame(welch)
    welch["p_fdr"] = seed_stats.fdr(welch["p"].to_numpy(float))
    tests = pd.concat([tests, welch], ignore_index=True)
  alignment.to_csv(out / "depth_alignment.csv", index=False)
  drop.to_csv(out / "depth_first_epoch_drop.csv", index=False)
  tests.to_csv(out / "depth_tests.csv", index=False)
  figure = _figure(alignment, out / "depth_alignment.png")
  return {"alignment": alignment, "first_epoch_drop": drop, "tests": tests, "figure": figure}


def _figure(alignment, path: Path) -> Path:
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  rois = list(dict.fromkeys(alignment.roi))
  rule_names = [r for r in dict.fromkeys(alignment.rule) if alignment.loc[alignment.rule == r, "epoch"].max() > 0]
  fig, axes = plt.subplots(
    len(rois), len(rule_names), figsize=(2.6 * len(rule_names), 2.0 * len(rois)), squeeze=False, sharex=True
  )
  for i, roi in enumerate(rois):
    for j, rule in enumerate(rule_names):
      ax = axes[i, j]
      for arch, sub in alignment[(alignment.roi == roi) & (alignment.rule == rule)].groupby("architecture", sort=False):
        sub = sub.sort_values("epoch")
        ax.plot(sub.epoch, sub["mean"], marker="o", ms=3, label=f"{arch} ({sub.layer.iloc[0]})")
        ax.fill_between(sub.epoch, sub.ci_lo, sub.ci_hi, alpha=0.15)
      ax.axhline(0, color="0.7", lw=0.5)
      if i == 0:
        ax.set_title(rule, fontsize=9)
      if j == 0:
        ax.set_ylabel(f"{roi}: ρ", fontsize=9)
      if i == len(rois) - 1:
        ax.set_xlabel("epoch", fontsize=9)
      ax.legend(fontsize=6)
  fig.suptitle("Alignment over training by architecture (mean over seeds, 95% t-band)", fontsize=10)
  fig.tight_layout()
  fig.savefig(path, dpi=130)
  plt.close(fig)
  return path


def main(argv=None) -> int:
  ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument("root", type=Path, help="folder for the four workdirs and the combined outputs")
  ap.add_argument("--tiny", action="store_true", help="the minutes-long smoke version")
  ap.add_argument("--architectures", default=",".join(ARCHITECTURES))
  ap.add_argument("--no-progress", action="store_true")
  args, overrides = ap.parse_known_args(argv)
  from leut import cli

  workdirs = {}
  for arch in args.architectures.split(","):
    workdirs[arch] = args.root / arch
    spec = f"{Path(__file__).resolve()}:{arch}{',tiny' if args.tiny else ''}"
    command = ["run", spec, "--workdir", str(workdirs[arch]), *overrides]
    if cli.main(command + (["--no-progress"] if args.no_progress else [])) != 0:
      return 1
  result = combine(workdirs, args.root)
  print(f"depth: tables and figure in {args.root} ({result['figure'].name})")
  return 0


if __name__ == "__main__":
  sys.exit(main())
