"""Learning rules, one per module, each a factory returning a `LearningRule` plus its protocol optimiser.

A rule named `foo` lives in `leut/rules/foo.py` and defines `foo(network, **hparams) -> LearningRule` (the
`leut.models.Network` it trains) and
`protocol_optimizer(*, steps_per_epoch, epochs, **hparams) -> optax.GradientTransformation`. That convention is
the whole registry: adding a rule is adding a file (see `notebooks/02_new_rule.ipynb`).

Every rule is also an optax transformation (`transform`, `as_transform`): `optax.chain(rule, *optimiser)` is what
leut's trainer runs, with the protocol optimiser or any other.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Mapping
from typing import Any

import optax

from leut.models.network import Network
from leut.rules.base import Batch, EmptyState, LearningRule, RuleUpdate, feedforward  # noqa: F401
from leut.rules.optax_rule import RuleTransformState, as_transform, init_key, rule_output  # noqa: F401

_NOT_RULES = {"base", "optax_rule"}


class UnknownRuleError(ValueError):
  pass


def available() -> list[str]:
  """Names of every rule module in `leut.rules`."""
  import leut.rules as pkg

  return sorted(
    m.name for m in pkgutil.iter_modules(pkg.__path__) if m.name not in _NOT_RULES and not m.name.startswith("_")
  )


def check_names(names) -> None:
  """Raise `UnknownRuleError` naming every unknown rule in `names` (before any work starts)."""
  unknown = [n for n in names if n not in available()]
  if unknown:
    raise UnknownRuleError(f"unknown learning rule(s) {unknown}; available rules: {', '.join(available())}")


def _module(name: str):
  if name not in available():
    raise UnknownRuleError(f"unknown learning rule {name!r}; available rules: {', '.join(available())}")
  return importlib.import_module(f"leut.rules.{name}")


_SETTABLE = (bool, int, float, str, tuple, list)


def hyperparameters(name: str) -> dict[str, Any]:
  """Every hyperparameter rule `name` accepts (its factory's and its `protocol_optimizer`'s keyword arguments with a
  number, boolean, string or list default: what a config or the command line can set), with its default."""
  module = _module(name)
  out = {}
  for fn in (getattr(module, name), module.protocol_optimizer):
    for key, p in inspect.signature(fn).parameters.items():
      if p.kind is p.KEYWORD_ONLY and isinstance(p.default, _SETTABLE):
        out.setdefault(key, p.default)
  return dict(sorted(out.items()))


def _split(fn, hparams: Mapping[str, Any]) -> dict[str, Any]:
  accepted = inspect.signature(fn).parameters
  return {k: v for k, v in hparams.items() if k in accepted}


def make(
  name: str,
  hparams: Mapping[str, Any] | None = None,
  *,
  steps_per_epoch: int,
  epochs: int,
  network: Network | None = None,
) -> tuple[LearningRule, optax.GradientTransformation]:
  """Build rule `name` for `network` (default: the protocol CNN) and its protocol optimiser; `hparams` go to
  whichever of the two accepts each key."""
  module = _module(name)
  if network is None:
    from leut.models import cnn

    network = cnn.network()
  hparams = dict(hparams or {})
  factory = getattr(module, name)
  make_tx = module.protocol_optimizer
  unused = set(hparams) - set(inspect.signature(factory).parameters) - set(inspect.signature(make_tx).parameters)
  if unused:
    raise ValueError(f"rule {name!r} does not take hyperparameter(s) {sorted(unused)}")
  rule = factory(network, **_split(factory, hparams))
  tx = make_tx(steps_per_epoch=steps_per_epoch, epochs=epochs, **_split(make_tx, hparams))
  return rule, tx


def transform(
  name: str, hparams: Mapping[str, Any] | None = None, *, network: Network | None = None, key=None
) -> optax.GradientTransformationExtraArgs:
  """Rule `name` for `network` (default: the protocol CNN) as an optax transformation (`as_transform`), built with
  the hyperparameters in `hparams` its factory takes; chain any optax optimiser after it:

      optax.chain(leut.rules.transform("feedback_alignment", network=net), optax.clip_by_global_norm(1.0),
                  optax.adam(1e-3))
  """
  module = _module(name)
  if network is None:
    from leut.models import cnn

    network = cnn.network()
  factory = getattr(module, name)
  hparams = dict(hparams or {})
  unused = set(hparams) - set(inspect.signature(factory).parameters)
  if unused:
    raise ValueError(f"rule {name!r} does not take hyperparameter(s) {sorted(unused)}")
  return as_transform(factory(network, **hparams), network, key=key)


def is_trained(name: str) -> bool:
  """False for rules that never change the network (only their epoch-0 checkpoint is meaningful)."""
  return getattr(_module(name), "TRAINS", True)
