"""Every config field that can be checked before any work starts: types, ranges, allowed values, rule hyperparameters.

`check_config(config)` raises a `ConfigError` naming the first bad field and what it should be, so a typo costs
seconds instead of a training run. The data the config points to is checked by `leut.experiment.preflight` (it
needs the files); checkpoints by `leut.checkpoint`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from leut.errors import ConfigError
from leut.models import NAMES as MODEL_NAMES

_MISSING = object()
PAIR_SETS = ("all", "cross_run")
METRICS = ("correlation", "cosine", "euclidean")
ALTERNATIVES = ("two-sided", "greater", "less")


def _get(config, field: str) -> Any:
  node = config
  for part in field.split("."):
    if not isinstance(node, Mapping) and not hasattr(node, "keys"):
      return _MISSING
    if part not in node:
      return _MISSING
    node = node[part]
  return node


def _is_int(v) -> bool:
  return isinstance(v, int) and not isinstance(v, bool)


def _int(config, field: str, *, lo: int | None = None, hi: int | None = None, hi_name: str = "") -> None:
  v = _get(config, field)
  if v is _MISSING:
    return
  if not _is_int(v):
    raise ConfigError(f"{field} must be an integer, not {v!r}")
  if lo is not None and v < lo:
    raise ConfigError(f"{field}={v} must be at least {lo}")
  if hi is not None and v > hi:
    raise ConfigError(f"{field}={v} must be at most {hi_name or hi}")


def _choice(config, field: str, allowed: Sequence[str]) -> None:
  v = _get(config, field)
  if v is not _MISSING and v not in allowed:
    raise ConfigError(f"{field} must be one of {list(allowed)}, not {v!r}")


def _bool(config, field: str) -> None:
  v = _get(config, field)
  if v is not _MISSING and not isinstance(v, bool):
    raise ConfigError(f"{field} must be true or false, not {v!r}")


def _str(config, field: str) -> None:
  v = _get(config, field)
  if v is not _MISSING and not isinstance(v, str):
    raise ConfigError(f"{field} must be a string, not {v!r}")


def _list(
  config, field: str, *, nonempty: bool = False, allowed: Sequence[str] | None = None, kind=None, unique: bool = True
) -> list:
  v = _get(config, field)
  if v is _MISSING:
    return []
  if isinstance(v, (str, bytes)) or not isinstance(v, Sequence):
    raise ConfigError(f"{field} must be a list, not {v!r}")
  items = list(v)
  if nonempty and not items:
    raise ConfigError(f"{field} is empty; give at least one value")
  if kind is not None:
    bad = [i for i in items if not kind(i)]
    if bad:
      raise ConfigError(f"{field} has invalid entries {bad}")
  if allowed is not None:
    bad = [i for i in items if i not in allowed]
    if bad:
      raise ConfigError(f"{field} has unknown entries {bad}; allowed: {list(allowed)}")
  dups = sorted({str(i) for i in items if items.count(i) > 1})
  if unique and dups:
    raise ConfigError(f"{field} lists {dups} more than once")
  return items


def _kind_of(default) -> tuple[str, Any] | None:
  """(description, predicate) a value must satisfy to replace `default`; None when any value goes."""
  if isinstance(default, bool):
    return "true or false", lambda v: isinstance(v, bool)
  if _is_int(default):
    return "an integer", _is_int
  if isinstance(default, float):
    return "a number", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)
  if isinstance(default, str):
    return "a string", lambda v: isinstance(v, str)
  if isinstance(default, (tuple, list)):
    return "a list", lambda v: isinstance(v, (tuple, list))
  return None


def check_rule_hparams(config) -> None:
  """Every `rule_hparams` entry names a known rule and parameters its factory or `protocol_optimizer` takes, with
  values of the type of their defaults."""
  from leut import rules

  hparams_by_rule = _get(config, "rule_hparams")
  if hparams_by_rule is _MISSING:
    return
  if not hasattr(hparams_by_rule, "keys"):
    raise ConfigError(f"rule_hparams must map rule names to their hyperparameters, not {hparams_by_rule!r}")
  unknown = [r for r in hparams_by_rule.keys() if r not in rules.available()]
  if unknown:
    raise ConfigError(f"rule_hparams names unknown rule(s) {unknown}; available rules: {', '.join(rules.available())}")
  for name in hparams_by_rule.keys():
    hparams = hparams_by_rule[name]
    if not hasattr(hparams, "keys"):
      raise ConfigError(f"rule_hparams.{name} must map hyperparameter names to values, not {hparams!r}")
    accepted = rules.hyperparameters(name)
    for key in hparams.keys():
      if key not in accepted:
        raise ConfigError(
          f"rule_hparams.{name}.{key}: rule {name!r} does not take it; its hyperparameters: {', '.join(accepted)}"
        )
      kind = _kind_of(accepted[key])
      if kind is not None and not kind[1](hparams[key]):
        raise ConfigError(
          f"rule_hparams.{name}.{key} must be {kind[0]} (its default is {accepted[key]!r}), not {hparams[key]!r}"
        )


def check_metrics(config) -> None:
  """`eval.metrics`: known names, 'rsa' among them (the report builds on rsa.csv), and response-level brain data for
  the metrics that need it (`leut.scoring.metrics`): precomputed THINGS-fMRI RDMs hold none."""
  from leut.scoring.metrics import METRICS, RESPONSE_METRICS

  chosen = _list(config, "eval.metrics", nonempty=True, allowed=METRICS)
  if chosen and "rsa" not in chosen:
    raise ConfigError(
      f"eval.metrics={chosen} lacks 'rsa': RSA is always computed and the report builds on it; "
      f"list it first, e.g. --config.eval.metrics=rsa,{','.join(chosen)}"
    )
  need = [m for m in chosen if m in RESPONSE_METRICS]
  brain = _get(config, "data.brain")
  rdms_only = (
    _get(config, "data.source") == "files"
    and brain in (_MISSING, "", "things_fmri")
    and _get(config, "data.brain_rdms_dir") not in (_MISSING, "")
  )
  if need and rdms_only:
    raise ConfigError(
      f"eval.metrics {need} need response-level brain data (stimuli x voxels), but data.brain_rdms_dir gives "
      "things_fmri as precomputed RDMs only: set data.things_fmri_dir (the single-trial betas) and leave "
      "data.brain_rdms_dir empty, or use --config.eval.metrics=rsa"
    )


def check_config(config) -> None:
  """Raise a `ConfigError` naming the first field whose value cannot work (see the module docstring)."""
  from leut import rules
  from leut.rsa.compare import METHODS
  from leut.scoring import bn_calibration
  from leut.scoring.stimulus_stats import CONTROLS

  _int(config, "seed")
  _int(config, "seeds", lo=1)
  names = _list(config, "rules", nonempty=True, kind=lambda v: isinstance(v, str))
  try:
    rules.check_names(names)
  except rules.UnknownRuleError as err:
    raise ConfigError(f"rules: {err}") from None
  check_rule_hparams(config)
  _int(config, "epochs", lo=0)
  epochs = _get(config, "epochs")
  milestones = _list(config, "milestones", kind=_is_int, unique=False)
  beyond = [m for m in milestones if not 0 <= m <= epochs]
  if beyond:
    raise ConfigError(f"milestones {beyond} are outside 0..epochs={epochs}; raise epochs or drop them")
  _int(config, "data.train_subset", lo=1)
  _int(config, "batch_size", lo=1, hi=_get(config, "data.train_subset"), hi_name="data.train_subset")
  _int(config, "seed_chunk", lo=0)
  if _get(config, "model.name") is not _MISSING:
    _choice(config, "model.name", MODEL_NAMES)
  if _get(config, "model.widths") is not _MISSING:
    _list(config, "model.widths", nonempty=True, kind=lambda v: _is_int(v) and v >= 1, unique=False)
  _int(config, "model.fc_dim", lo=1)

  _choice(config, "data.source", ("synthetic", "files"))
  for field in ("synthetic_dir", "cifar_dir", "things_fmri_dir", "things_images_dir", "brain_rdms_dir"):
    _str(config, f"data.{field}")
  _list(config, "data.rois", nonempty=True, kind=lambda v: isinstance(v, str) and v)
  _list(config, "data.subjects", kind=lambda v: isinstance(v, str) or _is_int(v))
  _choice(config, "data.zscore", ("all", "run"))
  _choice(config, "data.stimuli", ("per_concept", "test"))
  _int(config, "data.n_stimuli", lo=0)
  if _get(config, "data.n_stimuli") in (1, 2):
    raise ConfigError("data.n_stimuli must be 0 (all) or at least 3: an RDM of fewer stimuli has no pairs to rank")

  resolutions = _list(config, "eval.resolutions", nonempty=True, kind=_is_int)
  bad = [px for px in resolutions if px < 32 or px % 32]
  if bad:
    raise ConfigError(f"eval.resolutions {bad} must be multiples of 32 (32, 64, ..., 224)")
  _bool(config, "eval.upsampled")
  _list(config, "eval.pairs", nonempty=True, allowed=PAIR_SETS)
  check_metrics(config)
  _choice(config, "eval.metric", METRICS)
  _choice(config, "eval.method", METHODS)
  _int(config, "eval.batch_size", lo=1)
  _int(config, "eval.test_images", lo=0)
  _list(config, "eval.partial_controls", allowed=tuple(CONTROLS))
  _int(config, "eval.n_boot", lo=0)
  _choice(config, "eval.stats_epochs", ("first_last", "all"))
  _int(config, "eval.best_layer_splits", lo=0)
  _choice(config, "eval.readout", ("mean", "flatten", "pca"))
  _int(config, "eval.readout_dims", lo=1)
  _int(config, "eval.readout_components", lo=1)
  _int(config, "eval.readout_seed", lo=0)
  _list(config, "eval.bn_calibration", allowed=bn_calibration.SOURCES)
  _choice(config, "eval.bn_calibration_checkpoints", bn_calibration.CHECKPOINTS)
  _int(config, "eval.bn_calibration_batches", lo=1)
  _int(config, "eval.bn_calibration_batch_size", lo=2)
  bn_calibration.check_config(config)

  mapping = _get(config, "report.layer_for_roi")
  if mapping is not _MISSING:
    if not hasattr(mapping, "keys") or not all(isinstance(k, str) and isinstance(mapping[k], str) for k in mapping):
      raise ConfigError(f"report.layer_for_roi must map ROI names to layer names, not {mapping!r}")
  _choice(config, "report.alternative", ALTERNATIVES)
  _int(config, "report.n_mc", lo=1)
  _figure_formats(config)


FIGURE_FORMATS = ("png", "pdf", "svg")


def _figure_formats(config) -> None:
  formats = _get(config, "report.figure_formats")
  if formats is not _MISSING:
    formats = [formats] if isinstance(formats, str) else list(formats)
    unknown = [f for f in formats if f not in FIGURE_FORMATS]
    if not formats or unknown:
      raise ConfigError(f"report.figure_formats must name one or more of {list(FIGURE_FORMATS)}, not {formats!r}")
