"""Reports: figures, tables and `summary.md` written from a workdir's tidy CSVs (never from memory)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from leut.report import figures, summary, tables


def write_report(workdir, config) -> dict:
  """Read `results/*.csv` in `workdir` and (re)write `figures/` and `summary.md`."""
  workdir = Path(workdir)
  rsa = pd.read_csv(workdir / "results" / "rsa.csv")
  acc = pd.read_csv(workdir / "results" / "accuracy.csv")
  stats = tables.across_seeds(tables.seed_scores(tables.headline_view(rsa, config)))
  px = int(list(config.eval.resolutions)[0])
  out = {"alignment": figures.alignment_over_training(
      stats, workdir / "figures", rois=list(config.data.rois), subtitle=f"Model–brain RSA over training ({px} px stimuli, fixed layer per ROI)")}
  out["accuracy"] = figures.accuracy_over_training(acc, workdir / "figures")
  out["summary"] = summary.write_summary(workdir, config, rsa, acc, stats)
  return out
