"""Experiment configs: an `ml_collections.ConfigDict` built by `get_config()` in a Python file, plus overrides.

    leut run experiments/quickstart.py --workdir DIR --config.seeds=5 --config.rules=untrained,backprop

An override `--config.a.b=value` is parsed as the type the field already has (int, float, bool, str, list/tuple
of those: either `[1,2]` or `1,2`; an empty value is an empty string or list, and an error for a number). A value
that does not parse is a `ConfigError` naming the field. A workdir remembers its config in `config.json`, with the
code that wrote it (`provenance`: leut's version and git commit, every rule's resolved hyperparameters and optimiser
settings); resuming with a config, or with code, that would train something different is refused (see
`check_compatible` and `check_provenance`); a different commit is only reported.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import inspect
import json
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ml_collections

from leut.errors import ConfigError

# Sections that only change how checkpoints are scored or reported; they may differ on resume / re-evaluation.
EVALUATION_ONLY = (
  "command",
  "seed_chunk",
  "eval",
  "report",
  "data.brain",
  "data.brain_dir",
  "data.things_fmri_dir",
  "data.things_images_dir",
  "data.brain_rdms_dir",
  "data.rois",
  "data.subjects",
  "data.zscore",
  "data.stimuli",
  "data.n_stimuli",
  "rules",
)


# Fields the evaluation tables do not depend on (the command that wrote them, how many seeds ran at a time, the
# report's options): left out of the hash that the completion marker records (`evaluation_hash`).
REPORT_ONLY = ("command", "seed_chunk", "report")


class ConfigMismatchError(ConfigError):
  pass


def load(path: str, overrides: Sequence[str] = ()) -> ml_collections.ConfigDict:
  """Load `get_config()` from a config file (`path` or `path:arg`) and apply `--config.x=y` overrides."""
  file, _, arg = str(path).partition(":")
  spec = importlib.util.spec_from_file_location("leut_user_config", file)
  if spec is None or not Path(file).exists():
    raise ConfigError(f"config file {file!r} not found")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  if not hasattr(module, "get_config"):
    raise ConfigError(f"config file {file!r} defines no get_config(); see experiments/quickstart.py")
  config = module.get_config(arg) if arg else module.get_config()
  for item in overrides:
    apply_override(config, item)
  return config


def _parse_like(text: str, like: Any) -> Any:
  """`text` as a value of the type of `like`; raises ValueError (with what was expected) if it does not parse."""
  if isinstance(like, bool):
    if text.lower() in ("true", "1", "yes"):
      return True
    if text.lower() in ("false", "0", "no"):
      return False
    raise ValueError(f"expected a boolean (true/false), got {text!r}")
  if isinstance(like, (list, tuple)):
    text = text.strip()
    if not text:
      return type(like)()
    if text[0] in "[(":
      try:
        items = ast.literal_eval(text)
      except (ValueError, SyntaxError):
        raise ValueError(f"expected a list like [1,2] or 1,2, got {text!r}") from None
      items = list(items) if isinstance(items, (list, tuple)) else [items]
    else:
      items = [t for t in text.split(",") if t.strip()]
    elem = like[0] if len(like) else None
    parsed = [_parse_like(str(i).strip(), elem) if isinstance(i, str) and elem is not None else i for i in items]
    return type(like)(parsed)
  if isinstance(like, (int, float)):
    if not text.strip():
      raise ValueError(f"expected {'an integer' if isinstance(like, int) else 'a number'}, got an empty value")
    try:
      return type(like)(text)
    except ValueError:
      raise ValueError(f"expected {'an integer' if isinstance(like, int) else 'a number'}, got {text!r}") from None
  if isinstance(like, str):
    return text
  try:
    return ast.literal_eval(text)
  except (ValueError, SyntaxError):
    return text


def apply_override(config: ml_collections.ConfigDict, item: str) -> None:
  """Apply one `--config.a.b=value` (or `a.b=value`) override in place; a `ConfigError` names a bad one."""
  key, sep, value = item.removeprefix("--").removeprefix("config.").partition("=")
  if not sep:
    raise ConfigError(f"override {item!r} must look like --config.field=value")
  *parents, leaf = key.split(".")
  if len(parents) == 2 and parents[0] == "rule_hparams":
    _apply_rule_hparam(config, item, parents[1], leaf, value)
    return
  node = config
  for p in parents:
    if p not in node or not isinstance(node[p], ml_collections.ConfigDict):
      raise ConfigError(f"override {item!r}: config has no section {p!r}")
    node = node[p]
  if leaf not in node:
    raise ConfigError(f"override {item!r}: config has no field {key!r}; fields here: {sorted(node.keys())}")
  try:
    parsed = _parse_like(value, node[leaf])
  except ValueError as err:
    raise ConfigError(f"override {item!r}: {key} {err}") from None
  with node.unlocked():
    node[leaf] = parsed


def _apply_rule_hparam(config: ml_collections.ConfigDict, item: str, rule: str, name: str, value: str) -> None:
  """`--config.rule_hparams.<rule>.<name>=value`: any hyperparameter the rule accepts (`leut.rules.hyperparameters`),
  parsed as the type of the config's value or else of its default, added to the config's other settings."""
  from leut import rules

  if rule not in rules.available():
    raise ConfigError(
      f"override {item!r}: unknown learning rule {rule!r}; available rules: {', '.join(rules.available())}"
    )
  accepted = rules.hyperparameters(rule)
  if name not in accepted:
    raise ConfigError(
      f"override {item!r}: rule {rule!r} has no hyperparameter {name!r}; its hyperparameters: {', '.join(accepted)}"
    )
  if "rule_hparams" not in config or config.rule_hparams is None:
    with config.unlocked():
      config.rule_hparams = ml_collections.ConfigDict()
  section = config.rule_hparams
  with section.unlocked():
    if rule not in section:
      section[rule] = ml_collections.ConfigDict()
  node = section[rule]
  like = node[name] if name in node else accepted[name]
  try:
    parsed = _parse_like(value, like)
  except ValueError as err:
    raise ConfigError(f"override {item!r}: rule_hparams.{rule}.{name} {err}") from None
  with node.unlocked():
    node[name] = parsed


def with_defaults(saved: dict) -> ml_collections.ConfigDict:
  """A saved config (from `config.json`) with any field added to leut since it was written filled from defaults."""
  from leut.defaults import protocol_config

  def merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
      out[k] = merge(base[k], v) if isinstance(v, dict) and isinstance(base.get(k), dict) else v
    return out

  return ml_collections.ConfigDict(merge(to_dict(protocol_config()), saved))


def to_dict(config: ml_collections.ConfigDict) -> dict:
  return json.loads(config.to_json_best_effort())


def _flatten(d: dict, prefix: str = "") -> dict[str, Any]:
  out = {}
  for k, v in d.items():
    if isinstance(v, dict):
      out.update(_flatten(v, f"{prefix}{k}."))
    else:
      out[f"{prefix}{k}"] = v
  return out


def _excluding(d: dict, sections) -> dict[str, Any]:
  return {k: v for k, v in _flatten(d).items() if not any(k == e or k.startswith(e + ".") for e in sections)}


def _training_fields(d: dict) -> dict[str, Any]:
  return _excluding(d, EVALUATION_ONLY)


def evaluation_hash(saved: dict) -> str:
  """SHA-256 of everything in a config dict that the evaluation tables depend on (all but `REPORT_ONLY`)."""
  fields = _excluding({k: v for k, v in saved.items() if k != "provenance"}, REPORT_ONLY)
  return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def report_only_overrides(overrides: Sequence[str]) -> None:
  """`leut report` draws from tables already evaluated: only `--config.report.*` may change."""
  other = [o for o in overrides if not o.removeprefix("--").removeprefix("config.").startswith("report.")]
  if other:
    fields = ", ".join(o.removeprefix("--").removeprefix("config.").partition("=")[0] for o in other)
    raise ConfigError(
      f"leut report takes only --config.report.* overrides, not {fields}: the tables were evaluated with the "
      "workdir's config.json; to change the evaluation run `leut evaluate --workdir DIR` with the override"
    )


def check_compatible(saved: dict, current: dict, workdir: Path) -> None:
  """Refuse to resume into `workdir` when a field that changes training differs from what it was made with."""
  a, b = _training_fields(saved), _training_fields(current)
  diffs = [
    f"{k}: workdir has {a.get(k)!r}, config gives {b.get(k)!r}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)
  ]
  if diffs:
    raise ConfigMismatchError(
      f"{workdir} was made with a different training config; refusing to mix runs. "
      "Use a new --workdir, or the original config. Differences: " + "; ".join(diffs)
    )


# ----- provenance: the code that wrote a workdir --------------------------------------------------------------


def _jsonable(value: Any) -> Any:
  return json.loads(json.dumps(value, default=repr))


def _defaults(fn, skip=()) -> dict[str, Any]:
  return {
    name: p.default
    for name, p in inspect.signature(fn).parameters.items()
    if name not in skip and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
  }


def resolved_rule_settings(config) -> dict[str, dict]:
  """Per rule of `config.rules`: the rule factory's and `protocol_optimizer`'s settings as the code resolves them
  (signature defaults merged with `config.rule_hparams`), so a changed default is seen as a changed setting."""
  from leut import rules

  out = {}
  for name in config.rules:
    module = rules._module(name)
    hparams = dict(config.rule_hparams.get(name, {}))
    factory, make_tx = getattr(module, name), module.protocol_optimizer
    rule = _defaults(factory, skip=("network",))
    tx = _defaults(make_tx, skip=("steps_per_epoch", "epochs"))
    rule.update({k: v for k, v in hparams.items() if k in rule})
    tx.update({k: v for k, v in hparams.items() if k in tx})
    empty = inspect.Parameter.empty
    out[name] = _jsonable(
      {
        "rule": {k: (None if v is empty else v) for k, v in rule.items()},
        "optimizer": {k: (None if v is empty else v) for k, v in tx.items()},
      }
    )
  return out


def code_version() -> dict[str, Any]:
  """leut's installed version and the git commit of the package's checkout (None outside a git checkout)."""
  from importlib import metadata

  try:
    version = metadata.version("leut")
  except metadata.PackageNotFoundError:
    version = None
  commit = None
  try:
    out = subprocess.run(
      ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=10
    )
    if out.returncode == 0 and len(out.stdout.strip()) == 40:
      commit = out.stdout.strip()
  except (OSError, subprocess.SubprocessError):
    pass
  return {"version": version, "commit": commit}


def provenance(config) -> dict[str, Any]:
  """What config.json records about the code: `version`, `commit` and `resolved_rules` (`resolved_rule_settings`)."""
  return {**code_version(), "resolved_rules": resolved_rule_settings(config)}


def check_provenance(saved: dict, current: dict, workdir: Path) -> str:
  """Refuse code whose resolved rule settings differ from the workdir's (for every rule recorded in both); return a
  warning line ('' if none) when the commit or version differs."""
  diffs = []
  old_rules, new_rules = saved.get("resolved_rules") or {}, current.get("resolved_rules") or {}
  for rule in sorted(set(old_rules) & set(new_rules)):
    a, b = _flatten(old_rules[rule]), _flatten(new_rules[rule])
    diffs += [
      f"{rule}.{k}: workdir has {a.get(k)!r}, this code resolves {b.get(k)!r}"
      for k in sorted(set(a) | set(b))
      if a.get(k) != b.get(k)
    ]
  if diffs:
    raise ConfigMismatchError(
      f"{workdir} was made with other rule settings than this code resolves (a default changed in the code, or the "
      "rule's hyperparameters); refusing to mix runs. Use the code that made it "
      f"(commit {saved.get('commit') or 'unknown'}), set the old values in rule_hparams, or use a new --workdir. "
      "Differences: " + "; ".join(diffs)
    )
  if saved and (saved.get("commit"), saved.get("version")) != (current.get("commit"), current.get("version")):
    return (
      f"{workdir} was written by leut {saved.get('version')} at commit {saved.get('commit') or 'unknown'}; this is "
      f"leut {current.get('version')} at commit {current.get('commit') or 'unknown'} (its rule settings match)"
    )
  return ""


def milestone_epochs(config, rule_name: str) -> list[int]:
  """Milestones this rule is checkpointed at: the configured ones up to `epochs`; only 0 for untrained rules."""
  from leut import rules

  epochs = sorted({int(e) for e in config.milestones if 0 <= int(e) <= config.epochs} | {0})
  return [0] if not rules.is_trained(rule_name) else epochs
