"""Experiment configs: an `ml_collections.ConfigDict` built by `get_config()` in a Python file, plus overrides.

    leut run experiments/quickstart.py --workdir DIR --config.seeds=5 --config.rules=untrained,backprop

An override `--config.a.b=value` is parsed as the type the field already has (int, float, bool, str, list/tuple
of those: either `[1,2]` or `1,2`). A workdir remembers its config in `config.json`; resuming with a config that
would train something different is refused (see `check_compatible`).
"""

from __future__ import annotations

import ast
import importlib.util
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ml_collections

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


class ConfigMismatchError(ValueError):
  pass


def load(path: str, overrides: Sequence[str] = ()) -> ml_collections.ConfigDict:
  """Load `get_config()` from a config file (`path` or `path:arg`) and apply `--config.x=y` overrides."""
  file, _, arg = str(path).partition(":")
  spec = importlib.util.spec_from_file_location("leut_user_config", file)
  if spec is None or not Path(file).exists():
    raise FileNotFoundError(f"config file {file!r} not found")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config(arg) if arg else module.get_config()
  for item in overrides:
    apply_override(config, item)
  return config


def _parse_like(text: str, like: Any) -> Any:
  if isinstance(like, bool):
    if text.lower() in ("true", "1", "yes"):
      return True
    if text.lower() in ("false", "0", "no"):
      return False
    raise ValueError(f"expected a boolean, got {text!r}")
  if isinstance(like, (list, tuple)):
    items = ast.literal_eval(text) if text.strip()[:1] in "[(" else [t for t in text.split(",") if t.strip()]
    elem = like[0] if len(like) else None
    parsed = [_parse_like(str(i).strip(), elem) if isinstance(i, str) and elem is not None else i for i in items]
    return type(like)(parsed)
  if isinstance(like, int):
    return int(text)
  if isinstance(like, float):
    return float(text)
  if isinstance(like, str):
    return text
  try:
    return ast.literal_eval(text)
  except (ValueError, SyntaxError):
    return text


def apply_override(config: ml_collections.ConfigDict, item: str) -> None:
  """Apply one `--config.a.b=value` (or `a.b=value`) override in place."""
  key, sep, value = item.removeprefix("--").removeprefix("config.").partition("=")
  if not sep:
    raise ValueError(f"override {item!r} must look like --config.field=value")
  *parents, leaf = key.split(".")
  node = config
  for p in parents:
    if p not in node:
      raise KeyError(f"override {item!r}: config has no section {p!r}")
    node = node[p]
  if leaf not in node:
    raise KeyError(f"override {item!r}: config has no field {key!r}; fields here: {sorted(node.keys())}")
  with node.unlocked():
    node[leaf] = _parse_like(value, node[leaf])


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


def _training_fields(d: dict) -> dict[str, Any]:
  return {k: v for k, v in _flatten(d).items() if not any(k == e or k.startswith(e + ".") for e in EVALUATION_ONLY)}


def check_compatible(saved: dict, current: dict, workdir: Path) -> None:
  """Refuse to resume into `workdir` when a field that changes training differs from what it was made with."""
  a, b = _training_fields(saved), _training_fields(current)
  diffs = [
    f"{k}: workdir has {a.get(k)!r}, config gives {b.get(k)!r}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)
  ]
  if diffs:
    raise ConfigMismatchError(
      f"{workdir} was made with a different training config; refusing to mix runs. "
      "Use a new --workdir, or the original config. Differences:\n  " + "\n  ".join(diffs)
    )
