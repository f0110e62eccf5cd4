"""The codebase explains itself: protocol references resolve, and imports flow one way.

1. Every protocol reference in the code and docs ("PROTOCOL §3.6", "PROTOCOL.md §3", "docs/protocol.md §2.5–2.6",
   a bare "§3.11" next to one; docs/protocol.md's own cross-references included) names a numbered heading of
   `docs/protocol.md`, and every paper-version tag ("A v4", "C v3", "paper B", the published code's "v10") is
   defined in its §0.
2. The import graph of `leut/` (every `import` statement, function-level ones included, read with `ast`) has no
   cycle, and no module imports a unit from a higher layer of `LAYERS` or a different unit of its own layer.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROTOCOL = ROOT / "docs" / "protocol.md"
SCANNED = ("leut", "experiments", "benchmarks", "notebooks", "tests", "README.md", "docs")
TEXT_SUFFIXES = {".py", ".ipynb", ".md", ".sh", ".sbatch", ".txt", ".toml"}

# ---------------------------------------------------------------------------------------------------------------
# 1. Protocol references
# ---------------------------------------------------------------------------------------------------------------

NUM = r"\d+(?:\.\d+)*"
SECTION_RE = re.compile(rf"§\s?({NUM})(?:\s?[-–]\s?(?:§\s?)?({NUM}))?")
# what may sit between two sections of one citation: "§2.6, §5.3", "§3.10-3.11", "§1 and §2"
_CHAIN_TAIL = re.compile(rf"(?:§\s?{NUM}(?:\s?[-–]\s?{NUM})?\s*(?:,|;|and|&)?\s*)*$")
# a citation of another document or of a paper's own section: "ANCHORS.md §1.4", "C v3 §4.1", "arXiv:2604.16875 §2"
_OTHER_SOURCE = re.compile(r"(?:([\w./-]+\.md)|\b[ABC](?: v\d+)?|arXiv:?\s?\d{4}\.\d{4,5}(?:v\d+)?)[\s\"'`(]*$")
HEADING_RE = re.compile(rf"^(#+)\s+§({NUM})\s+(.*\S)\s*$", re.M)
# paper-version tags: "A v4", "A v1/v2", "paper B", "papers A", "Paper C's"; the published code's "v8", "v10+", "v12"
TAG_RE = re.compile(
  r"\b([ABC]) (v\d+(?:/v?\d+)*)\b|\b[Pp]apers? ([ABC])\b(?! v\d)|(?<![\w.-])(v(?:8|10|12))\+?(?![\w.])"
)


def _text(path: Path) -> str:
  if path.suffix == ".ipynb":
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return "\n".join("".join(c["source"]) for c in cells)
  return path.read_text(encoding="utf-8")


def scanned_files() -> list[Path]:
  this = Path(__file__).resolve()
  out = []
  for name in SCANNED:
    p = ROOT / name
    files = [p] if p.is_file() else sorted(f for f in p.rglob("*") if f.is_file())
    out += [f for f in files if f.suffix in TEXT_SUFFIXES and f.resolve() != this]
  return out


def section_references(text: str) -> list[str]:
  """Every protocol section a text cites, ranges expanded ("§1–3" → 1, 2, 3; "§3.10-3.11" → 3.10, 3.11).

  A "§" counts as a protocol reference unless it follows another document's name (`ANCHORS.md §1.4`) or a paper
  tag (`C v3 §4.1`), looking back over a chain such as "PROTOCOL §2.6, §5.3".
  """
  refs = []
  for m in SECTION_RE.finditer(text):
    before = text[max(0, m.start() - 200) : m.start()]
    before = before[: _CHAIN_TAIL.search(before).start()]
    other = _OTHER_SOURCE.search(before)
    if other and not (other.group(1) or "").lower().endswith("protocol.md"):
      continue
    first, last = m.group(1), m.group(2)
    refs.append(first)
    if last:
      a, b = first.split("."), last.split(".")
      if len(a) == len(b) and a[:-1] == b[:-1] and int(a[-1]) < int(b[-1]):
        refs += [".".join(a[:-1] + [str(k)]) for k in range(int(a[-1]) + 1, int(b[-1]) + 1)]
      else:
        refs.append(last)
  return refs


def version_tags(text: str) -> list[str]:
  """Every paper-version tag a text uses: "A v1/v2" → "A v1", "A v2"; "paper B" → "B"; "v10+" → "v10"."""
  tags = []
  for m in TAG_RE.finditer(text):
    paper, versions, bare, code = m.groups()
    if paper:
      tags += [f"{paper} v{v.lstrip('v')}" for v in versions.split("/")]
    else:
      tags.append(bare or code)
  return tags


def protocol_headings() -> dict[str, str]:
  """Section number → heading title of every numbered heading of docs/protocol.md ("## §3 ..." or "### §3.6 ...")."""
  text = PROTOCOL.read_text(encoding="utf-8")
  headings = {}
  for m in HEADING_RE.finditer(text):
    assert m.group(2) not in headings, f"docs/protocol.md: §{m.group(2)} is used by two headings"
    headings[m.group(2)] = m.group(3)
  return headings


def defined_tags() -> set[str]:
  """Tags in the first column of the tables of docs/protocol.md §0 (e.g. `| **A v4** | ...`)."""
  text = PROTOCOL.read_text(encoding="utf-8")
  start = re.search(r"^## §0\s", text, re.M)
  assert start, "docs/protocol.md has no '## §0' section defining the paper versions"
  end = re.search(r"^## §", text[start.end() :], re.M)
  section = text[start.end() : start.end() + end.start() if end else len(text)]
  cells = re.findall(r"^\|\s*([^|]+?)\s*\|", section, re.M)
  return {c.strip("*` ") for c in cells if not set(c) <= set("-: ")}


def unresolved(refs: list[str], headings: dict[str, str]) -> list[str]:
  return [r for r in refs if r not in headings]


def test_protocol_headings_are_numbered_in_order_without_gaps():
  headings = protocol_headings()
  assert "0" in headings and "1" in headings
  keys = sorted(headings, key=lambda k: [int(x) for x in k.split(".")])
  for k in keys:
    *parent, last = k.split(".")
    if parent:
      assert ".".join(parent) in headings, f"§{k} has no parent section"
    if int(last) > (0 if not parent else 1):
      prev = ".".join(parent + [str(int(last) - 1)])
      assert prev in headings, f"§{k} follows a missing §{prev}"


def test_every_protocol_reference_resolves_to_a_heading():
  headings = protocol_headings()
  found, missing = 0, []
  for path in scanned_files():
    refs = section_references(_text(path))
    found += len(refs) if path.parent.name != "docs" else 0
    missing += [f"{path.relative_to(ROOT)}: §{r}" for r in unresolved(refs, headings)]
  assert not missing, "protocol references with no heading in docs/protocol.md:\n" + "\n".join(missing)
  assert found >= 50, f"only {found} protocol references found in the code: is the scanner still reading it?"


def test_every_paper_version_tag_is_defined_in_section_0():
  tags = defined_tags()
  found, missing = 0, []
  for path in scanned_files():
    used = version_tags(_text(path))
    found += len(used) if path.parent.name != "docs" else 0
    missing += [f"{path.relative_to(ROOT)}: {t}" for t in used if t not in tags]
  assert not missing, "paper-version tags not defined in docs/protocol.md §0:\n" + "\n".join(missing)
  assert found >= 20, f"only {found} version tags found in the code: is the scanner still reading it?"


def test_the_resolver_rejects_what_the_document_does_not_have():
  headings, tags = protocol_headings(), defined_tags()
  text = (
    'Cites PROTOCOL §99.9 and PROTOCOL.md §3.6, §3.42; "PROTOCOL "\n  "§2.5"; docs/protocol.md §1–3; '
    "(§3.10-3.11); ANCHORS.md §1.4; paper C §4.1; A v1/v2 and B v2; v10+ fixed it."
  )
  refs = section_references(text)
  assert refs == ["99.9", "3.6", "3.42", "2.5", "1", "2", "3", "3.10", "3.11"]
  assert unresolved(refs, headings) == ["99.9", "3.42"]
  used = version_tags(text)
  assert used == ["C", "A v1", "A v2", "B v2", "v10"]
  assert [t for t in used if t not in tags] == ["B v2"]  # paper B has one version


# The sections whose content the code relies on (checked by their titles, so a renumbering cannot go unnoticed).
EXPECTED_TITLES = {
  "1": "architecture",
  "1.3": "feature",
  "1.4": "roi",
  "2.1": "training data",
  "2.3": "backprop",
  "2.4": "feedback alignment",
  "2.5": "predictive coding",
  "2.6": "stdp",
  "3.1": "stimuli",
  "3.2": "rdm",
  "3.3": "aggregat",
  "3.4": "cross-run",
  "3.5": "noise ceiling",
  "3.6": "bootstrap",
  "3.7": "permutation",
  "3.8": "fdr",
  "3.9": "cohen",
  "3.10": "partial",
  "3.11": "control",
  "4": "published numbers",
  "5.1": "batchnorm",
  "6.5": "brain rdm",
  "7": "jax",
}


@pytest.mark.parametrize("section,word", sorted(EXPECTED_TITLES.items()))
def test_cited_sections_have_the_content_the_code_expects(section, word):
  assert word in protocol_headings()[section].lower()


# ---------------------------------------------------------------------------------------------------------------
# 2. Imports
# ---------------------------------------------------------------------------------------------------------------

# Lowest first. A module belongs to the longest unit that prefixes its name. A module may import its own unit and
# any unit of a lower layer; units of one layer are independent of each other. Data flows
# config → training → checkpoints → scoring → tables → report; the layers follow it.
LAYERS = [
  ("leut.errors",),  # leut's own exception types, imported by every layer
  ("leut", "leut.defaults", "leut.distributed", "leut.xla_cpu", "leut.optimizers"),
  ("leut.workdir",),  # where each workdir file lives, atomic writes, lock, marker
  ("leut.data", "leut.models", "leut.rsa", "leut.checkpoint", "leut.fetch"),
  ("leut.rules", "leut.encoding", "leut.readout"),  # learning rules, encoding models, conv-map readouts over leut.rsa
  ("leut.config",),  # configs, overrides and the rules' resolved settings
  ("leut.train",),  # the training loop and milestone training (writes checkpoints)
  ("leut.scoring.layer_choice", "leut.scoring.metrics"),  # shared by the layers above (metrics: eval.metrics)
  # statistics computed per stimulus while scoring, and the cka / encoding tables; the report's reductions above them
  (
    "leut.scoring.stimulus_stats",
    "leut.scoring.bootstrap_differences",
    "leut.scoring.model_similarity",
    "leut.scoring.bn_calibration",
    "leut.scoring.cka_scores",
    "leut.scoring.encoding_scores",
    "leut.scoring.brain_truth",
  ),
  ("leut.scoring.two_level_bootstrap",),  # resamples the seeds of the stimulus bootstrap's contrasts
  ("leut.scoring.metric_bootstrap",),  # the stimulus bootstrap, differences and two-level tables of cka / encoding
  ("leut.report",),
  ("leut.checks",),  # every config field checked before any work
  ("leut.evaluate",),  # checkpoints → features → RDMs → scores
  ("leut.experiment",),  # train, evaluate, report
  ("leut.score_features",),  # external features scored like a checkpoint's
  ("leut.cli",),
  ("leut.__main__",),
]


def leut_modules() -> dict[str, Path]:
  mods = {}
  for path in sorted((ROOT / "leut").rglob("*.py")):
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
      parts = parts[:-1]
    mods[".".join(parts)] = path
  return mods


def import_graph(mods: dict[str, Path]) -> dict[str, set[str]]:
  """module → the leut modules it imports anywhere in its body (a submodule named in `from pkg import sub` counts
  as `pkg.sub`; a name defined in a package's `__init__` as the package)."""

  def known(name: str) -> str:
    while name not in mods:
      name = name.rpartition(".")[0]
    return name

  graph = {}
  for name, path in mods.items():
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
      if isinstance(node, ast.Import):
        out |= {known(a.name) for a in node.names if a.name.split(".")[0] == "leut"}
      elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
          up = package.split(".")[: len(package.split(".")) - node.level + 1]
          base = ".".join(up + ([node.module] if node.module else []))
        if base.split(".")[0] != "leut":
          continue
        out |= {f"{base}.{a.name}" if f"{base}.{a.name}" in mods else known(base) for a in node.names}
    out.discard(name)
    graph[name] = out
  return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
  """The strongly connected components with more than one module (Tarjan), each a list of modules."""
  index, low, stack, on_stack, comps = {}, {}, [], set(), []

  def visit(v):
    index[v] = low[v] = len(index)
    stack.append(v)
    on_stack.add(v)
    for w in sorted(graph.get(v, ())):
      if w not in index:
        visit(w)
        low[v] = min(low[v], low[w])
      elif w in on_stack:
        low[v] = min(low[v], index[w])
    if low[v] == index[v]:
      comp = []
      while True:
        w = stack.pop()
        on_stack.discard(w)
        comp.append(w)
        if w == v:
          break
      if len(comp) > 1:
        comps.append(sorted(comp))

  for v in sorted(graph):
    if v not in index:
      visit(v)
  return comps


def unit_of(module: str) -> tuple[str, int] | None:
  best = None
  for layer, units in enumerate(LAYERS):
    for unit in units:
      if (module == unit or module.startswith(unit + ".")) and (best is None or len(unit) > len(best[0])):
        best = (unit, layer)
  return best


def layering_violations(graph: dict[str, set[str]]) -> list[str]:
  bad = []
  for a, targets in sorted(graph.items()):
    unit_a, layer_a = unit_of(a)
    for b in sorted(targets):
      unit_b, layer_b = unit_of(b)
      if unit_b != unit_a and layer_b >= layer_a:
        kind = "upward" if layer_b > layer_a else "sideways"
        bad.append(f"{a} imports {b} ({kind}: {unit_a} is in layer {layer_a}, {unit_b} in layer {layer_b})")
  return bad


def test_every_module_is_placed_in_a_layer():
  unplaced = [m for m in leut_modules() if unit_of(m) is None]
  assert not unplaced, f"add these to a unit of LAYERS in {Path(__file__).name}: {unplaced}"


def test_the_import_graph_sees_function_level_imports():
  graph = import_graph(leut_modules())
  assert "leut.distributed" in graph["leut.cli"]  # `from leut import distributed` inside `cli.main`
  assert "leut.cli" in graph["leut.__main__"]


def test_no_import_cycle():
  found = cycles(import_graph(leut_modules()))
  assert not found, "import cycles:\n" + "\n".join(" -> ".join(c) for c in found)


def test_no_import_goes_up_or_sideways_between_units():
  bad = layering_violations(import_graph(leut_modules()))
  assert not bad, "imports against the layering:\n" + "\n".join(bad)


def test_the_checks_catch_a_cycle_and_an_upward_or_sideways_import():
  graph = {
    "leut.rules.stdp": {"leut.optimizers"},
    "leut.optimizers": {"leut.train.loop"},
    "leut.train.loop": {"leut.rules.stdp"},
    "leut.scoring.stimulus_stats": {"leut.report.tables"},
    "leut.report.tables": set(),
    "leut.rsa.compare": {"leut.data.cifar"},
    "leut.data.cifar": set(),
  }
  assert cycles(graph) == [["leut.optimizers", "leut.rules.stdp", "leut.train.loop"]]
  n = {unit: layer for layer, units in enumerate(LAYERS) for unit in units}
  assert layering_violations(graph) == [
    f"leut.optimizers imports leut.train.loop (upward: leut.optimizers is in layer {n['leut.optimizers']}, "
    f"leut.train in layer {n['leut.train']})",
    f"leut.rsa.compare imports leut.data.cifar (sideways: leut.rsa is in layer {n['leut.rsa']}, leut.data in layer "
    f"{n['leut.data']})",
    f"leut.scoring.stimulus_stats imports leut.report.tables (upward: leut.scoring.stimulus_stats is in layer "
    f"{n['leut.scoring.stimulus_stats']}, leut.report in layer {n['leut.report']})",
  ]


def _readme_layout() -> str:
  text = (ROOT / "README.md").read_text()
  start = text.index("\n## Layout\n")
  end = text.find("\n## ", start + 1)
  return text[start : end if end > 0 else len(text)]


def test_the_readme_layout_names_every_part_of_the_package_and_nothing_that_is_not_there():
  layout = _readme_layout()
  named = set(re.findall(r"`((?:leut|docs|experiments|benchmarks|launch|notebooks|tests)/[\w./]*)`", layout))
  parts = {
    f"leut/{p.name}" for p in (ROOT / "leut").iterdir() if not p.name.startswith(("_", ".")) or p.name == "__main__.py"
  }
  parts = {p for p in parts if p.endswith(".py") or (ROOT / p).is_dir()}
  assert parts - named == set(), "README Layout does not name these parts of leut/"
  missing = {n for n in named if not (ROOT / n.rstrip("/")).exists() and not n.endswith("README.md")}
  assert missing == set(), "README Layout names paths that do not exist"
