"""`summary.md`: the headline numbers in prose and tables, each stating the CSV rows it comes from."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from leut.report import tables


def _fmt(mean, sd, n):
  return f"{mean:.3f} ± {sd:.3f} (n={n})" if pd.notna(sd) else f"{mean:.3f} (n={n})"


def write_summary(workdir: Path, config, rsa: pd.DataFrame, acc: pd.DataFrame, stats: pd.DataFrame) -> Path:
  workdir = Path(workdir)
  cfg = json.loads((workdir / "config.json").read_text()) if (workdir / "config.json").exists() else {}
  px = int(list(config.eval.resolutions)[0])
  lines = ["# leut summary", ""]
  cmd = cfg.get("command") or f"leut evaluate --workdir {workdir}"
  lines += [f"Reproduce: `{cmd}` (tables: `results/rsa.csv`, `results/accuracy.csv`).", ""]
  lines += [f"Rules: {', '.join(config.rules)}; seeds: {config.seeds}; epochs: {config.epochs}; "
            f"milestones: {list(config.milestones)}; evaluation at {px} px, native images, all stimulus pairs.", ""]
  lines += ["## Alignment (Spearman ρ between model and brain RDMs)", "",
            "Per-subject ρ averaged over subjects, then mean ± SD over seeds; fixed layer per ROI. Source rows: "
            f"`rsa.csv` with resolution={px}, arm=native, pairs=all, subject≠mean, the layer named in each column.",
            ""]
  last = stats.groupby("rule")["epoch"].max()
  rois = list(dict.fromkeys(stats["roi"]))
  header = "| rule | epoch | " + " | ".join(f"{r} ({stats[stats.roi == r].layer.iloc[0]})" for r in rois) + " |"
  lines += [header, "|" + "---|" * (len(rois) + 2)]
  for rule in config.rules:
    for epoch in sorted({0, int(last.get(rule, 0))}):
      cells = []
      for roi in rois:
        row = stats[(stats.rule == rule) & (stats.roi == roi) & (stats.epoch == epoch)]
        cells.append(_fmt(row["mean"].iloc[0], row["sd"].iloc[0], int(row["n"].iloc[0])) if len(row) else "–")
      lines.append(f"| {rule} | {epoch} | " + " | ".join(cells) + " |")
  lines += ["", "## Held-out accuracy", "", "Source rows: `accuracy.csv` (mean ± SD over seeds).", "",
            "| rule | epoch | accuracy |", "|---|---|---|"]
  for rule in config.rules:
    r = acc[acc.rule == rule]
    if not len(r):
      continue
    e = int(r.epoch.max())
    v = r[r.epoch == e]["accuracy"]
    lines.append(f"| {rule} | {e} | {_fmt(v.mean(), v.std(), len(v))} |")
  lines += ["", "Figures: `figures/alignment.png`, `figures/accuracy.png` (PDF beside each).", ""]
  path = workdir / "summary.md"
  path.write_text("\n".join(lines))
  return path
