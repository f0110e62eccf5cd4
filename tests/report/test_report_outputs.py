"""The report's tables have their documented columns, every figure exists as PNG and PDF, and every number that
summary.md prints equals the CSV row it cites."""

import json
import math
import re
import shutil

import numpy as np
import pandas as pd
import pytest

from leut import config as config_lib
from leut import report
from leut.report import families

TABLE_COLUMNS = {
  "alignment": ["rule", "roi", "layer", "epoch", "mean", "sd", "ci_lo", "ci_hi", "n", "n_excluded"],
  "alignment_all_layers": ["rule", "roi", "layer", "epoch", "mean", "sd", "ci_lo", "ci_hi", "n", "n_excluded"],
  "alignment_mean_rdm": ["rule", "roi", "layer", "epoch", "mean", "sd", "ci_lo", "ci_hi", "n", "n_excluded"],
  "alignment_change": ["rule", "roi", "layer", "epoch", "delta", "sd", "ci_lo", "ci_hi", "n", "n_excluded"],
  "first_epoch_drop": [
    "rule",
    "roi",
    "layer",
    "epoch_a",
    "epoch_b",
    "rho_e0",
    "e0_ci_lo",
    "e0_ci_hi",
    "rho_e1",
    "delta",
    "ci_lo",
    "ci_hi",
    "n",
    "n_excluded",
    "drop_pct",
    "note",
  ],
  "excluded_seeds": ["rule", "epoch", "roi", "layer", "n_seeds", "n_excluded", "seeds", "reasons"],
  "rule_comparison": [
    "rule",
    "roi",
    "layer",
    "epoch",
    "mean",
    "sd",
    "ci_lo",
    "ci_hi",
    "n",
    "n_excluded",
    "mean_diff",
    "d",
    "p",
    "p_fdr",
    "p_floor",
    "floored",
  ],
  "best_layer": [
    "rule",
    "roi",
    "best_layer",
    "epoch",
    "mean",
    "ci_lo",
    "ci_hi",
    "n",
    "next_best_mean",
    "biased_upward",
    "cv_layer",
    "cv_mean",
    "cv_ci_lo",
    "cv_ci_hi",
    "cv_n",
  ],
  "stimulus_differences": [
    "contrast",
    "rule_a",
    "epoch_a",
    "rule_b",
    "epoch_b",
    "roi",
    "layer",
    "resolution",
    "arm",
    "pairs",
    "n_boot",
    "n_undefined",
    "rho_a",
    "rho_b",
    "diff",
    "ci_lo",
    "ci_hi",
    "p",
    "p_fdr",
  ],
  "accuracy_summary": ["rule", "epoch", "mean", "sd", "ci_lo", "ci_hi", "n"],
  "weights_summary": ["rule", "layer", "epoch", "mean", "sd", "ci_lo", "ci_hi", "n"],
  "ground_truth": [
    "check",
    "statement",
    "expected",
    "observed",
    "rule",
    "roi",
    "layer",
    "epoch",
    "mean",
    "p",
    "p_floor",
    "floored",
    "passed",
  ],
}
TEST_COLUMNS = [
  "family",
  "rule_a",
  "rule_b",
  "roi",
  "layer",
  "epoch_a",
  "epoch_b",
  "n_seeds",
  "n_excluded",
  "mean_diff",
  "d",
  "p",
  "p_fdr",
  "p_floor",
  "floored",
]
RICH_ONLY = {
  "resolution_sweep": ["rule", "roi", "layer", "epoch", "resolution", "arm", "mean", "ci_lo", "ci_hi", "n"],
  "stimulus_ci": ["rule", "epoch", "layer", "roi", "resolution", "arm", "pairs", "n_boot", "rho", "ci_lo", "ci_hi"],
  "partial_summary": [
    "rule",
    "roi",
    "layer",
    "epoch",
    "control",
    "rho",
    "rho_partial",
    "delta",
    "ci_lo",
    "ci_hi",
    "n",
    "n_excluded",
  ],
}
FIGURES = ["alignment", "alignment_change", "first_epoch_drop", "best_layer", "accuracy", "weights"]


def _columns_ok(path, cols):
  df = pd.read_csv(path)
  missing = [c for c in cols if c not in df.columns]
  assert not missing, f"{path.name} lacks {missing}"
  return df


@pytest.mark.parametrize("which", ["tiny", "rich"])
def test_tables_have_documented_columns(which, tiny_workdir, rich_workdir):
  wd = tiny_workdir if which == "tiny" else rich_workdir
  for name, cols in TABLE_COLUMNS.items():
    assert len(_columns_ok(wd / "results" / f"{name}.csv", cols)), name
  for fam in families.FAMILIES:
    _columns_ok(wd / "results" / f"tests_{fam}.csv", TEST_COLUMNS)
  if which == "rich":
    for name, cols in RICH_ONLY.items():
      assert len(_columns_ok(wd / "results" / f"{name}.csv", cols)), name
    for fam in ("vs_untrained", "between_rules", "epoch1_vs_0", "vs_backprop"):
      assert len(pd.read_csv(wd / "results" / f"tests_{fam}.csv")), fam
    # milestones 1 and 2 only: a trend needs three, so no test, and the summary says why
    assert not len(pd.read_csv(wd / "results" / "tests_trend.csv"))
    text = (wd / "summary.md").read_text()
    for rule in ("backprop", "feedback_alignment"):
      assert f"- No trend test for {rule}: its milestones ≥ 1 are [1, 2], and a trend needs at least 3" in text


def test_every_figure_is_written_in_the_configured_formats(tiny_workdir, rich_workdir):
  # rich: the default (PNG and PDF); tiny: --config.report.figure_formats=png
  for wd, names, formats in (
    (rich_workdir, FIGURES + ["resolution_sweep"], ("png", "pdf")),
    (tiny_workdir, FIGURES, ("png",)),
  ):
    assert sorted({p.suffix[1:] for p in (wd / "figures").iterdir()}) == sorted(formats)
    for name in names:
      for ext in formats:
        p = wd / "figures" / f"{name}.{ext}"
        assert p.is_file() and p.stat().st_size > 2000, p


def test_best_layer_is_labelled_biased(rich_workdir):
  best = pd.read_csv(rich_workdir / "results" / "best_layer.csv")
  assert best.biased_upward.all()
  assert "biased upward" in (rich_workdir / "summary.md").read_text()


@pytest.mark.parametrize("which", ["tiny", "rich"])
def test_best_layer_table_carries_the_cross_validated_score(which, tiny_workdir, rich_workdir):
  wd = tiny_workdir if which == "tiny" else rich_workdir
  best = pd.read_csv(wd / "results" / "best_layer.csv")
  cv = pd.read_csv(wd / "results" / "best_layer_cv.csv")
  head = cv[(cv.resolution == 32) & (cv.arm == "native") & (cv.pairs == "all")]
  assert set(head.epoch) == {0, 2}  # eval.stats_epochs = first_last
  for _, b in best.iterrows():
    seeds = head[(head.rule == b.rule) & (head.roi == b.roi) & (head.epoch == b.epoch)]
    if not len(seeds):
      assert pd.isna(b.cv_mean) and b.epoch == 1
      continue
    assert b.cv_mean == pytest.approx(seeds.cv_score.mean(), abs=1e-12) and b.cv_n == len(seeds) == 5
    choices = pd.Series(";".join(seeds.chosen_layers).split(";")).value_counts()
    assert choices[b.cv_layer] == choices.max()
  header = next(l for l in (wd / "summary.md").read_text().splitlines() if l.startswith("| rule | roi | epoch |"))
  assert "| best_layer | mean |" in header and "| cv_layer | cv_mean | cv_ci_lo | cv_ci_hi |" in header


@pytest.mark.parametrize("which", ["tiny", "rich"])
def test_summary_reports_the_paired_bootstrap_differences(which, tiny_workdir, rich_workdir):
  wd = tiny_workdir if which == "tiny" else rich_workdir
  text = (wd / "summary.md").read_text()
  diffs = pd.read_csv(wd / "results" / "stimulus_differences.csv")
  vs = diffs[(diffs.contrast == "vs_untrained") & (diffs.epoch_a == 2)]
  assert len(vs) == (4 if which == "tiny" else 8)  # trained rules x ROIs at the headline layer
  assert "## Paired stimulus-bootstrap differences" in text
  assert "Source: `results/stimulus_differences.csv` where contrast=vs_untrained, epoch_a=2" in text
  k = int(((vs.ci_lo > 0) | (vs.ci_hi < 0)).sum())
  assert f"the CI excludes 0 at epoch 2 for {k} of {len(vs)} rule-vs-untrained differences" in text
  if which == "rich":
    assert "between-rule differences" in text and "epoch-to-epoch steps" in text


# ---- summary.md ↔ CSV -------------------------------------------------------------------------------------------

KEYS = (
  "check",
  "rule",
  "rule_a",
  "rule_b",
  "roi",
  "layer",
  "epoch",
  "epoch_a",
  "epoch_b",
  "control",
  "inference",
  "analysis",
  "arm",
  "resolution",
  "pairs",
  "estimator",
  "target_accuracy",
)


def parse_tables(text):
  """[(csv name, header, rows)] for every table that follows a `Source:` line."""
  lines = text.splitlines()
  out = []
  for i, line in enumerate(lines):
    m = re.match(r"Source: `results/(\w+)\.csv`", line)
    if not m:
      continue
    j = i + 1
    while not lines[j].startswith("|"):
      j += 1
    header = [c.strip() for c in lines[j].strip("|").split("|")]
    rows = []
    for row in lines[j + 2 :]:
      if not row.startswith("|"):
        break
      rows.append([c.strip() for c in row.strip().strip("|").split("|")])
    out.append((m.group(1), header, rows))
  return out


def _tol(cell):
  if "e" in cell.lower() and not cell.lower().endswith("inf"):
    return abs(float(cell)) * 5e-3
  dec = len(cell.split(".")[1]) if "." in cell else 0
  return 0.5 * 10**-dec + 1e-12


def _same(cell, value):
  if cell in ("–", "", "not defined"):
    return value is None or (isinstance(value, float) and math.isnan(value)) or value == ""
  if cell in ("yes", "no"):
    return bool(value) == (cell == "yes")
  if isinstance(value, str):
    return cell == value
  if cell in ("inf", "-inf"):
    return float(value) == float(cell)
  return abs(float(cell) - float(value)) <= _tol(cell)


def check_summary_against_csvs(wd):
  text = (wd / "summary.md").read_text()
  tables = parse_tables(text)
  assert len(tables) >= 6
  checked = 0
  for name, header, rows in tables:
    df = pd.read_csv(wd / "results" / f"{name}.csv")
    for row in rows:
      cells = dict(zip(header, row))
      sel = np.ones(len(df), bool)
      for k in KEYS:
        if k in cells and k in df.columns:
          col = df[k]
          if cells[k] in ("", "–"):  # an undefined key (e.g. no epoch for the simulation-truth check)
            sel &= col.isna().to_numpy()
          else:
            sel &= (col.astype(str) == cells[k]).to_numpy() | (
              pd.to_numeric(col, errors="coerce") == pd.to_numeric(cells[k], errors="coerce")
            ).to_numpy()
      match = df[sel]
      assert len(match) == 1, (name, cells, len(match))
      rec = match.iloc[0]
      for head, cell in cells.items():
        if head in KEYS:
          continue
        if head == "mean ± sd (n)":
          m = re.match(r"(-?[\d.]+) ± ([\d.]+) \(n=(\d+)\)", cell)
          assert m, cell
          assert _same(m.group(1), rec["mean"]) and _same(m.group(2), rec["sd"]) and int(m.group(3)) == rec["n"]
        elif head == "95% CI":
          lo, hi = cell.strip("[]").split(", ")
          assert _same(lo, rec["ci_lo"]) and _same(hi, rec["ci_hi"]), (name, cell)
        else:
          v = rec[head]
          assert _same(cell, None if pd.isna(v) and not isinstance(v, str) else v), (name, head, cell, v)
        checked += 1
  return text, checked


@pytest.mark.parametrize("which", ["tiny", "rich"])
def test_summary_numbers_equal_the_csv_rows_they_cite(which, tiny_workdir, rich_workdir):
  wd = tiny_workdir if which == "tiny" else rich_workdir
  text, checked = check_summary_against_csvs(wd)
  assert checked > 100
  # prose: the ground-truth statements repeat their CSV row's numbers
  gt = pd.read_csv(wd / "results" / "ground_truth.csv")
  if which == "tiny":  # an evaluation of synthetic data scores the simulated truth per ROI (check d)
    assert set(gt.check) == {"a", "b", "c", "d"} and sorted(gt[gt.check == "d"].roi) == ["IT", "LOC", "V1", "V2"]
  for _, g in gt.iterrows():
    tag = f"({g['check']}) the scored {g['roi']} " if g["check"] == "d" else f"({g['check']})"
    line = next(l for l in text.splitlines() if l.startswith(("- ✓ (", "- ✗ (")) and tag in l)
    assert f"{g['mean']:.3f}" in line
    assert line.startswith("- ✓" if g["passed"] else "- ✗")
    if g["check"] == "d":  # the simulation truth against the scored brain RDMs: a permutation p, no seeds
      assert f"permutation p = {g['p']:.3g}" in line and g["passed"]
    elif g["check"] != "a":
      assert f"p = {g['p']:.3g}" in line and f"{int(g['n_positive'])}/{int(g['n_seeds'])} seeds" in line


def test_headline_bullets_repeat_their_test_rows(rich_workdir):
  text = (rich_workdir / "summary.md").read_text()
  vs = pd.read_csv(rich_workdir / "results" / "tests_vs_untrained.csv")
  for _, t in vs.iterrows():
    line = next(l for l in text.splitlines() if l.startswith(f"- {t.rule_a} at {t.roi} ({t.layer}): "))
    m = re.search(r"Δρ = ([+-][\d.]+), d = (\S+), (\d+)/(\d+) seeds > 0, p = (\S+?)[ ,].*p_fdr = (\S+)\.$", line)
    assert m, line
    assert _same(m.group(1), t.mean_diff) and _same(m.group(2), t.d)
    assert int(m.group(3)) == t.n_positive and int(m.group(4)) == t.n_seeds
    assert _same(m.group(5), t.p) and _same(m.group(6), t.p_fdr)
    assert ("smallest attainable" in line) == bool(t.floored)


def test_summary_alignment_cell_matches_an_independent_reduction(tiny_workdir):
  rsa = pd.read_csv(tiny_workdir / "results" / "rsa.csv")
  rows = rsa[
    (rsa.rule == "backprop")
    & (rsa.epoch == 2)
    & (rsa.layer == "conv1")
    & (rsa.roi == "V1")
    & (rsa.pairs == "all")
    & (rsa.subject != "mean")
    & (rsa.arm == "native")
  ]
  per_seed = rows.groupby("seed").rho.mean()
  assert f"{per_seed.mean():.3f} ± {per_seed.std():.3f} (n=5)" in (tiny_workdir / "summary.md").read_text()


def test_summary_names_the_reproducing_command(tiny_workdir, rich_workdir, tmp_path):
  assert "Reproduce: `leut run experiments/quickstart.py --workdir RICH`" in (rich_workdir / "summary.md").read_text()
  recorded = json.loads((tiny_workdir / "config.json").read_text())["command"]
  assert recorded.startswith(f"leut run experiments/quickstart.py --workdir {tiny_workdir}")
  assert f"Reproduce: `{recorded}`" in (tiny_workdir / "summary.md").read_text()
  # a workdir whose config.json has no command falls back to re-running the report
  bare = tmp_path / "bare"
  shutil.copytree(tiny_workdir, bare, ignore=shutil.ignore_patterns("checkpoints"))
  cfg = json.loads((bare / "config.json").read_text())
  del cfg["command"]
  (bare / "config.json").write_text(json.dumps(cfg))
  report.write_report(bare, config_lib.with_defaults(cfg))
  assert f"Reproduce: `leut report --workdir {bare}`" in (bare / "summary.md").read_text()


def test_ground_truth_checks_are_reported(tiny_workdir, rich_workdir):
  for wd, truth in ((tiny_workdir, ["d"] * 4), (rich_workdir, [])):  # the rich fixture has no brain_truth.csv
    gt = pd.read_csv(wd / "results" / "ground_truth.csv")
    assert list(gt.check) == ["a", "b", "c", *truth]
    assert "## Ground truth recovered (synthetic data)" in (wd / "summary.md").read_text()
  gt = pd.read_csv(rich_workdir / "results" / "ground_truth.csv").set_index("check")
  assert gt.loc["b", "passed"] and gt.loc["b", "n_positive"] == 5 and gt.loc["b", "p"] == 1 / 32


def test_optional_tables_are_rendered_when_present(tiny_workdir, rich_workdir, tmp_path):
  tiny = (tiny_workdir / "summary.md").read_text()
  rich = (rich_workdir / "summary.md").read_text()
  for text in (tiny, rich):  # `leut run` writes them by default; the rich fixture carries its own
    assert "Source: `results/partial_summary.csv`" in text and "Source: `results/noise_ceiling.csv`" in text
    assert "Source: `results/stimulus_ci.csv`" in text
  bare = tmp_path / "bare"
  shutil.copytree(tiny_workdir, bare, ignore=shutil.ignore_patterns("checkpoints", "partial.csv", "bootstrap.csv"))
  report.write_report(bare, config_lib.with_defaults(json.loads((bare / "config.json").read_text())))
  text = (bare / "summary.md").read_text()
  assert "Not available: this evaluation wrote no `results/partial.csv`" in text and "stimulus_ci" not in text
  assert "## Resolution sweep" in rich and "## Resolution sweep" not in tiny
  part = pd.read_csv(rich_workdir / "results" / "partial_summary.csv")
  assert set(part.control) == {"pixel", "luminance", "all"}
  assert (part.delta < 0).all()  # the fixture lowered every partial rho by 0.003
